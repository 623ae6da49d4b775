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

    def _of(self, values: Ints, rows: Ints) -> Ints:
        # rows are ascending and distinct: as many as there are records means all of them, in order.
        return values if len(rows) == len(values) else values[rows]

    def _advance(self, rows: Ints, width: Ints | int, what: str, start: Ints | None = None) -> Ints:
        start = self._of(self.pos, rows) if start is None else start
        after = start + width
        end = self._of(self.end, rows)
        over = after > end
        if over.any():
            self.fail(rows[over], f"truncated: the record ends inside {what}")
            after = np.where(over, end, after)
            start = np.where(over, end, start)
        if len(rows) == len(self.pos):
            self.pos = after
        else:
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
        start = self._of(self.pos, rows).copy()
        # Byte by byte, carrying on only with the varints not yet ended: most are one or two bytes long.
        byte = self.buf[np.minimum(start, self.limit)]
        zigzag = (byte & 0x7F).astype(np.uint64)
        width = np.ones(len(rows), dtype=np.int64)
        going = np.flatnonzero(byte & 0x80)
        for k in range(1, _MAX_VARINT):
            if not len(going):
                break
            byte = self.buf[np.minimum(start[going] + k, self.limit)]
            zigzag[going] |= (byte & 0x7F).astype(np.uint64) << _SHIFTS[k]
            width[going] += 1
            going = going[(byte & 0x80) != 0]
        if len(going):
            self.fail(rows[going], f"{what}: a varint longer than 10 bytes")
            start = self._of(self.pos, rows)
        self._advance(rows, width, what, start)
        value: Ints = (zigzag >> np.uint64(1)).astype(np.int64) ^ -(zigzag & np.uint64(1)).astype(np.int64)
        return value

    def blob(self, rows: Ints, what: str) -> tuple[Ints, Ints]:
        """The (start, length) of a length-prefixed ``bytes``/``string`` of each of ``rows``."""
        length = self.long(rows, what)
        negative = length < 0
        if negative.any():
            self.fail(rows[negative], f"{what}: negative length")
        ok = self._of(self.ok, rows)
        if not ok.all():
            length = np.where(ok, length, 0)
        start = self._advance(rows, length, what)
        ok = self._of(self.ok, rows)
        return start, length if ok.all() else np.where(ok, length, 0)


@dataclass(frozen=True)
class Pieces:
    """The bytes a field contributes to each of n records, one row per record: record i's are the bytes of
    ``matrix[i]`` where ``mask[i]`` is set (all of them when ``mask`` is None), in order."""

    matrix: Bytes
    mask: npt.NDArray[np.bool_] | None = None

    @property
    def lengths(self) -> Ints:
        n, width = self.matrix.shape
        if self.mask is None:
            return np.full(n, width, dtype=np.int64)
        found: Ints = self.mask.sum(axis=1, dtype=np.int64)
        return found

    @property
    def data(self) -> Bytes:
        """Every record's bytes, one record after another."""
        if self.mask is None:
            return self.matrix.reshape(-1)
        packed: Bytes = self.matrix[self.mask]
        return packed


def concat(parts: list[Pieces]) -> Pieces:
    """Each record's pieces of ``parts``, in that order, as one piece per record."""
    # Side by side, every record's bytes are its row's wanted bytes: one compress, no per-byte index arithmetic.
    matrix = np.concatenate([part.matrix for part in parts], axis=1)
    if all(part.mask is None for part in parts):
        return Pieces(matrix)
    masks = [np.ones(part.matrix.shape, dtype=bool) if part.mask is None else part.mask for part in parts]
    return Pieces(matrix, np.concatenate(masks, axis=1))


def fixed(values: Bytes) -> Pieces:
    """Pieces of equal width from a (n, width) array."""
    return Pieces(np.ascontiguousarray(values))


def packed(lengths: Ints, data: Bytes) -> Pieces:
    """Pieces from record i's ``lengths[i]`` bytes following record i - 1's in ``data``."""
    n = len(lengths)
    widest = int(lengths.max()) if n else 0
    if n and len(data) == widest * n:  # one width for all (uuids, codes, symbols): a reshape
        return Pieces(data.reshape(n, widest))
    mask = np.arange(widest) < lengths[:, None]
    matrix = np.zeros((n, widest), dtype=np.uint8)
    matrix[mask] = data  # row-major: the wanted cells, in order, are exactly the packed bytes
    return Pieces(matrix, mask)


def longs(values: Ints) -> Pieces:
    """Zig-zag varints of ``values``."""
    zigzag = ((values << 1) ^ (values >> 63)).astype(np.uint64)
    if not len(zigzag) or zigzag.max() < 0x80:  # lengths, counts, small numbers: one byte each
        return Pieces(zigzag.astype(np.uint8)[:, None])
    width = 1 + (zigzag[:, None] >= _THRESHOLDS).sum(axis=1)
    widest = int(width.max())
    groups = ((zigzag[:, None] >> _SHIFTS[:widest]) & np.uint64(0x7F)).astype(np.uint8)
    column = np.arange(widest)
    groups |= np.where(column < (width - 1)[:, None], np.uint8(0x80), np.uint8(0))
    return Pieces(groups, column < width[:, None])


def blobs(lengths: Ints, data: Bytes) -> list[Pieces]:
    """Length-prefixed byte strings, the bytes of record i being the i-th ``lengths[i]`` bytes of ``data``."""
    return [longs(lengths), packed(lengths, data)]


def spread(part: Pieces, present: npt.NDArray[np.bool_]) -> Pieces:
    """``part`` (one piece per present record) as pieces of every record, empty where not present."""
    matrix = np.zeros((len(present), part.matrix.shape[1]), dtype=np.uint8)
    matrix[present] = part.matrix
    mask = np.zeros(matrix.shape, dtype=bool)
    mask[present] = True if part.mask is None else part.mask
    return Pieces(matrix, mask)
