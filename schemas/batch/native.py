"""The fast path of decoding: the project's Rust reader (``schemas/batch/native``, built by ``make venv``) reads the
bodies of one writer schema straight into Arrow buffers, checking each record as it goes, and polars takes the
buffers as they are.

It applies when the writer's schema is the reader's (the common case: nothing to resolve), holds no map and no
union around anything but a leaf (``flat``); otherwise, or when the reader gives a batch back (a string that is not
UTF-8, a decimal beyond its precision), the numpy decoder (``schemas.batch.decoder``) reads the group. A malformed
record gets the reason the numpy decoder gives it and no row.

Measured (bench/codec.py): this replaced polars' own Avro reader over an in-memory object container, which held
the GIL for 1 µs a record, and the numpy pass that had to check every record for it first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import tradecore_avro

from schemas.batch import framing, nodes
from schemas.batch.decoder import MAX_MICROS, MIN_MICROS
from schemas.batch.wire import Ints

# The Rust reader's and writer's kinds of leaf (src/lib.rs); OPTIONAL is added to one for the union ["null", T].
_KINDS = {"string": 0, "uuid": 0, "long": 1, "int": 2, "boolean": 3, "double": 4, "timestamp": 5}
_DECIMAL, _ENUM, OPTIONAL = 6, 7, 16
_ARROW = {
    "string": pa.large_string(),
    "uuid": pa.large_string(),
    "long": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Verdicts:
    """Which records of a group were read (``ok``), and why each other one was not."""

    ok: npt.NDArray[np.bool_]
    reason: list[str | None]


Buffers = tuple[bytes | None, bytes, bytes | None]  # a leaf column: validity (a byte a row), values, string offsets


class NativeReader:
    """Reads bodies of one writer schema (equal to the reader's) with the Rust reader.

    ``name``: the event's, for the reason given to a record with bytes after its body."""

    def __init__(self, node: nodes.Record, name: str) -> None:
        self.node = node
        self.name = name
        self.ops: list[tuple[int, str, int]] = []
        _flatten(node, node.name, self.ops)

    @staticmethod
    def applies(writer: nodes.Record, reader: nodes.Record) -> bool:
        return writer == reader and flat(writer)

    def read(self, framed: framing.Framed, rows: Ints) -> tuple[pl.DataFrame, Verdicts] | None:
        """The columns of the good records among ``rows``, and the verdicts; None if the reader gave them back."""
        found = tradecore_avro.decode(
            framed.data,
            framed.body_starts[rows].tobytes(),
            framed.ends[rows].tobytes(),
            self.ops,
            self.name,
            MIN_MICROS,
            MAX_MICROS,
        )
        if found is None:
            return None
        ok_bytes, malformed, columns = found
        ok = np.frombuffer(ok_bytes, dtype=np.bool_)
        reason: list[str | None] = [None] * len(rows)
        for row, why in malformed:
            reason[row] = why
        leaves: Iterator[Buffers] = iter(columns)
        good = int(ok.sum())
        frame = pl.DataFrame([_series(f.name, f.node, leaves, good) for f in self.node.fields])
        return frame, Verdicts(ok, reason)


def _flatten(node: nodes.Node, label: str, ops: list[tuple[int, str, int]], optional: bool = False) -> None:
    """The reader's ops for ``node``: one per leaf, depth first, labelled as the numpy decoder labels them."""
    if isinstance(node, nodes.Record):
        for field in node.fields:
            _flatten(field.node, f"{label}.{field.name}", ops)
    elif isinstance(node, nodes.Optional):
        _flatten(node.value, label, ops, optional=True)
    else:
        arg = (
            node.precision
            if isinstance(node, nodes.Decimal)
            else len(node.symbols)
            if isinstance(node, nodes.Enum)
            else 0
        )
        ops.append((kind_of(node) + (OPTIONAL if optional else 0), label, arg))


def kind_of(node: nodes.Node) -> int:
    """The Rust code's kind of a leaf node (a decimal, an enum or a ``Leaf``)."""
    if isinstance(node, nodes.Decimal):
        return _DECIMAL
    if isinstance(node, nodes.Enum):
        return _ENUM
    if isinstance(node, nodes.Leaf):
        return _KINDS[node.kind]
    raise TypeError(f"the native codec takes no {type(node).__name__} as a leaf")  # maps: ``applies`` keeps them out


def _series(name: str, node: nodes.Node, leaves: Iterator[Buffers], n: int) -> pl.Series:
    """The column of ``node`` from the next leaves' buffers."""
    if isinstance(node, nodes.Record):
        fields = [_series(f.name, f.node, leaves, n) for f in node.fields]
        return pl.DataFrame(fields).to_struct(name)
    valid, values, offsets = next(leaves)
    bits = None if valid is None else pa.py_buffer(np.packbits(np.frombuffer(valid, np.uint8), bitorder="little"))
    inner = node.value if isinstance(node, nodes.Optional) else node
    if isinstance(inner, nodes.Decimal):
        array = pa.Array.from_buffers(pa.decimal128(inner.precision, inner.scale), n, [bits, pa.py_buffer(values)])
    elif isinstance(inner, nodes.Enum):
        codes = pl.from_arrow(pa.Array.from_buffers(pa.int32(), n, [bits, pa.py_buffer(values)]))
        symbols = pl.Series(name, inner.symbols, dtype=nodes.dtype(inner))
        return symbols.gather(codes)  # type: ignore[arg-type]
    elif isinstance(inner, nodes.Leaf) and inner.kind == "boolean":
        packed = np.packbits(np.frombuffer(values, np.uint8), bitorder="little")
        array = pa.Array.from_buffers(pa.bool_(), n, [bits, pa.py_buffer(packed)])
    elif isinstance(inner, nodes.Leaf) and offsets is not None:
        array = pa.Array.from_buffers(_ARROW[inner.kind], n, [bits, pa.py_buffer(offsets), pa.py_buffer(values)])
    else:
        assert isinstance(inner, nodes.Leaf)
        array = pa.Array.from_buffers(_ARROW[inner.kind], n, [bits, pa.py_buffer(values)])
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)
    return series.alias(name)


def flat(node: nodes.Node) -> bool:
    """Whether the Rust code takes ``node`` as one op per leaf: no map, and every union around a leaf."""
    if isinstance(node, nodes.Record):
        return all(flat(field.node) for field in node.fields)
    if isinstance(node, nodes.Optional):
        return not isinstance(node.value, nodes.Record | nodes.Map | nodes.Optional)
    return not isinstance(node, nodes.Map)
