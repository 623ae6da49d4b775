"""The fast path of decoding: check every record in numpy without building its values, then let polars' Avro
reader build the columns from one in-memory object container of the records that passed.

Measured (bench/codec.py), polars builds typed columns from a container several times faster than the
field-by-field numpy decoder, but a container has no per-record framing: a truncated or junk-tailed value would
corrupt its neighbours, and bytes after a body go unseen. So the numpy skim finds each record's end and every
malformed record first; only then are the good bodies handed to polars. It applies when the writer's schema is
the reader's (the common case: nothing to resolve) and holds no map (which polars' reader does not support);
otherwise, or if polars refuses the bodies (invalid UTF-8, a decimal beyond its precision), the numpy decoder
reads the group.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import polars as pl

from schemas.batch import framing, nodes, wire
from schemas.batch.decoder import MAX_MICROS, MIN_MICROS
from schemas.batch.wire import Bytes, Cursor, Ints

_SYNC = bytes(16)


class ContainerReader:
    """Reads bodies of one writer schema (equal to the reader's) through ``polars.read_avro``."""

    def __init__(self, schema: dict[str, Any], node: nodes.Record) -> None:
        self.node = node
        self.dtypes = {field.name: nodes.dtype(field.node) for field in node.fields}
        meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
        header = bytearray(b"Obj\x01") + _long(len(meta))
        for key, value in meta.items():
            header += _long(len(key)) + key + _long(len(value)) + value
        self.header = bytes(header + _long(0) + _SYNC)

    @staticmethod
    def applies(writer: nodes.Record, reader: nodes.Record) -> bool:
        return writer == reader and not _has_map(writer)

    def skim(self, cursor: Cursor) -> None:
        """Walk every record to its end, failing the malformed ones, without building any value."""
        _skim(cursor, self.node, np.arange(len(cursor.pos), dtype=np.int64), self.node.name)

    def read(self, padded: Bytes, starts: Ints, cursor: Cursor) -> pl.DataFrame | None:
        """The columns of the records still ok under ``cursor``; None if polars refuses their bodies."""
        ok = cursor.ok
        size = len(padded) - wire.PAD
        keep = np.zeros(size, dtype=bool)
        whole = len(starts) and starts[0] == framing.HEADER and cursor.end[-1] == size
        if ok.all() and whole and _contiguous(starts, cursor.end):
            # The whole batch, every value good and of this schema: all bytes but the 5-byte headers.
            keep[:] = True
            keep[(starts - framing.HEADER)[:, None] + np.arange(framing.HEADER)] = False
        else:
            # Mark the bytes of every good body (a +1 at its start, a -1 at its end) and keep those.
            delta = np.zeros(size + 1, dtype=np.int8)
            delta[starts[ok]] = 1
            delta[cursor.end[ok]] -= 1
            keep = np.cumsum(delta[:-1], dtype=np.int8) > 0
        bodies = padded[:size][keep].tobytes()
        data = self.header + _long(int(ok.sum())) + _long(len(bodies)) + bodies + _SYNC
        try:
            return pl.read_avro(io.BytesIO(data)).cast(self.dtypes)  # type: ignore[arg-type]
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
            return None


def _skim(cursor: Cursor, node: nodes.Node, rows: Ints, label: str) -> None:
    if isinstance(node, nodes.Record):
        for field in node.fields:
            _skim(cursor, field.node, rows, f"{label}.{field.name}")
    elif isinstance(node, nodes.Optional):
        branch = cursor.long(rows, label)
        odd = (branch != 0) & (branch != 1)
        if odd.any():
            cursor.fail(rows[odd], f"{label}: union branch out of range")
        _skim(cursor, node.value, rows[branch == 1], label)
    elif isinstance(node, nodes.Enum):
        index = cursor.long(rows, label)
        bad = (index < 0) | (index >= len(node.symbols))
        if bad.any():
            cursor.fail(rows[bad], f"{label}: enum index out of range")
    elif isinstance(node, nodes.Decimal):
        _, length = cursor.blob(rows, label)
        wide = length > 16
        if wide.any():
            cursor.fail(rows[wide], f"{label}: decimal wider than 16 bytes")
    elif isinstance(node, nodes.Leaf):
        if node.kind in ("string", "uuid"):
            cursor.blob(rows, label)
        elif node.kind == "boolean":
            cursor.fixed(rows, 1, label)
        elif node.kind == "double":
            cursor.fixed(rows, 8, label)
        else:
            value = cursor.long(rows, label)
            low, high = (-(2**31), 2**31 - 1) if node.kind == "int" else (MIN_MICROS, MAX_MICROS)
            if node.kind in ("int", "timestamp"):
                outside = (value < low) | (value > high)
                if outside.any():
                    cursor.fail(rows[outside], f"{label}: {node.kind} out of range")


def _has_map(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Map):
        return True
    if isinstance(node, nodes.Optional):
        return _has_map(node.value)
    if isinstance(node, nodes.Record):
        return any(_has_map(field.node) for field in node.fields)
    return False


def _contiguous(starts: Ints, ends: Ints) -> bool:
    """Whether the values follow one another with nothing between them (each body's header right before it)."""
    return bool((starts[1:] - framing.HEADER == ends[:-1]).all())


def _long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while zigzag >= 0x80:
        out.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)
