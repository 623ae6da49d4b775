"""Avro's binary primitives over whole arrays: varints, fixed-width values and length-prefixed bytes.

``Cursor`` reads the same field of many records at once (each record has its own position); ``Pieces`` holds the
bytes one field contributes to each record, and ``concat`` lays the pieces of consecutive fields side by side.
No loop runs per record: every step is a numpy operation over all the records it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Ints = npt.NDArray[np.int64]
Bytes = npt.NDArray[np.uint8]

_MAX_VARINT = 10  # a zig-zag long takes at most 10 bytes
PAD = 16  # reads past a record's end land in zero padding, then fail the record
_SHIFTS = (7 * np.arange(_MAX_VARINT)).astype(np.uint64)
_THRESHOLDS = (np.uint64(1) << _SHIFTS[1:]).astype(np.uint64)


class Cursor:
    """Positions in a buffer of record bodies; records that go wrong get a reason and are read no further."""

    def __init__(self, padded: Bytes, starts: Ints, ends: Ints) -> None:
        self.buf = padded  # the values end to end, then PAD zero bytes
        self.limit = len(padded) - 1
        self.pos = starts.copy()
        self.end = ends
        self.reason: list[str | None] = [None] * len(starts)
        self.ok = np.ones(len(starts), dtype=bool)

    def fail(self, rows: Ints, reason: str) -> None:
        """Record ``reason`` for those of ``rows`` that had none yet; their later fields are not trusted."""
        fresh = rows[self.ok[rows]]
        self.ok[fresh] = False
        for row in fresh.tolist():  # only on malformed records, never the common case
            self.reason[row] = reason
        self.pos[fresh] = self.end[fresh]

    def _advance(self, rows: Ints, width: Ints | int, what: str) -> Ints:
        start = self.pos[rows]
        after = start + width
        over = after > self.end[rows]
        if over.any():
            self.fail(rows[over], f"truncated: the record ends inside {what}")
            after = np.where(over, self.end[rows], after)
            start = np.where(over, self.end[rows], start)
        self.pos[rows] = after
        return start

    def fixed(self, rows: Ints, width: int, what: str) -> Bytes:
        """``width`` bytes of each of ``rows``, as a (len(rows), width) array."""
        start = self._advance(rows, width, what)
        index = np.minimum(start[:, None] + np.arange(width), self.limit)
        found: Bytes = self.buf[index]
        return found

    def long(self, rows: Ints, what: str) -> Ints:
        """A zig-zag varint of each of ``rows``."""
        start = self.pos[rows]
        raw = self.buf[np.minimum(start[:, None] + np.arange(_MAX_VARINT), self.limit)]
        last = (raw & 0x80) == 0
        width = last.argmax(axis=1) + 1
        endless = ~last.any(axis=1)
        if endless.any():
            self.fail(rows[endless], f"{what}: a varint longer than 10 bytes")
        used = np.arange(_MAX_VARINT) < width[:, None]
        groups = (raw & 0x7F).astype(np.uint64) << _SHIFTS
        zigzag = np.bitwise_or.reduce(np.where(used, groups, np.uint64(0)), axis=1)
        self._advance(rows, width, what)
        value: Ints = (zigzag >> np.uint64(1)).astype(np.int64) ^ -(zigzag & np.uint64(1)).astype(np.int64)
        return value

    def blob(self, rows: Ints, what: str) -> tuple[Ints, Ints]:
        """The (start, length) of a length-prefixed ``bytes``/``string`` of each of ``rows``."""
        length = self.long(rows, what)
        negative = length < 0
        if negative.any():
            self.fail(rows[negative], f"{what}: negative length")
        length = np.where(self.ok[rows], length, 0)
        start = self._advance(rows, length, what)
        return start, np.where(self.ok[rows], length, 0)


@dataclass(frozen=True)
class Pieces:
    """The bytes a field contributes to each of n records: record i's are ``data[offsets[i]:offsets[i]+lengths[i]]``,
    records one after another in ``data``."""

    lengths: Ints
    data: Bytes

    @property
    def offsets(self) -> Ints:
        offsets = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=offsets[1:])
        return offsets


def concat(parts: list[Pieces]) -> Pieces:
    """Each record's pieces of ``parts``, in that order, as one piece per record."""
    lengths: Ints = np.sum([part.lengths for part in parts], axis=0, dtype=np.int64)
    data = np.empty(int(lengths.sum()), dtype=np.uint8)
    cursor = Pieces(lengths, data).offsets
    for part in parts:
        if len(part.data):
            # Every byte of the part goes to its record's cursor plus its place within the record's piece.
            shift = np.repeat(cursor - part.offsets, part.lengths)
            data[shift + np.arange(len(part.data))] = part.data
        cursor = cursor + part.lengths
    return Pieces(lengths, data)


def fixed(values: Bytes) -> Pieces:
    """Pieces of equal width from a (n, width) array."""
    n, width = values.shape
    return Pieces(np.full(n, width, dtype=np.int64), np.ascontiguousarray(values).reshape(-1))


def longs(values: Ints) -> Pieces:
    """Zig-zag varints of ``values``."""
    zigzag = ((values << 1) ^ (values >> 63)).astype(np.uint64)
    width: Ints = 1 + (zigzag[:, None] >= _THRESHOLDS).sum(axis=1, dtype=np.int64)
    groups = ((zigzag[:, None] >> _SHIFTS) & np.uint64(0x7F)).astype(np.uint8)
    column = np.arange(_MAX_VARINT)
    groups |= np.where(column < (width - 1)[:, None], np.uint8(0x80), np.uint8(0))
    return Pieces(width.astype(np.int64), groups[column < width[:, None]])


def blobs(lengths: Ints, data: Bytes) -> Pieces:
    """Length-prefixed byte strings, the bytes of record i being the i-th ``lengths[i]`` bytes of ``data``."""
    return concat([longs(lengths), Pieces(lengths, data)])


def spread(part: Pieces, present: npt.NDArray[np.bool_]) -> Pieces:
    """``part`` (one piece per present record) as pieces of every record, empty where not present."""
    lengths = np.zeros(len(present), dtype=np.int64)
    lengths[present] = part.lengths
    return Pieces(lengths, part.data)
