"""The fast path of encoding: a frame's columns handed to the project's Rust writer (``schemas/batch/native``) as
buffers, one per leaf, and every record value written in one pass over the rows.

It applies to schemas whose unions hold a leaf (``["null", T]`` of a string, a number, a decimal, an enum…) and
that have no map; ``schemas.batch.encoder`` (numpy) encodes the rest. The columns are checked and cast exactly as
that encoder checks them, so a frame it refuses is refused here with the same error.

Measured (bench/ingest.py): the numpy encoder was a third of a file ingest's CPU — a pass of numpy calls per field,
then the pieces joined per record.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import tradecore_avro

from schemas.batch import columns, encoder, nodes
from schemas.batch.errors import BatchEncodeError
from schemas.batch.native import OPTIONAL, kind_of

Leaf = tuple[int, bytes | None, bytes, bytes | None]  # the Rust writer's leaf: kind, validity, values, offsets


def encode(node: nodes.Record, frame: pl.DataFrame, header: bytes, label: str) -> list[bytes]:
    """The values of ``frame``'s rows: ``header`` (magic byte, schema id), then each row's body."""
    leaves: list[Leaf] = []
    _record(node, frame, label, leaves)
    values: list[bytes] = tradecore_avro.encode(header, frame.height, leaves)
    return values


def _record(node: nodes.Record, frame: pl.DataFrame, label: str, leaves: list[Leaf]) -> None:
    for field in node.fields:
        if field.name not in frame.columns:
            raise BatchEncodeError(f"{label}: no column {field.name!r}", hint=f"columns: {frame.columns}")
        _value(field.node, frame.get_column(field.name), f"{label}.{field.name}", leaves)


def _value(node: nodes.Node, column: pl.Series, label: str, leaves: list[Leaf]) -> None:
    if isinstance(node, nodes.Record):
        if column.null_count():
            raise BatchEncodeError(f"{label}: {column.null_count()} nulls in a field that is not optional")
        _record(node, column.struct.unnest(), label, leaves)
        return
    valid = None
    if isinstance(node, nodes.Optional):
        valid = column.is_not_null().to_numpy().astype(np.uint8).tobytes()
        node = node.value
    elif column.null_count():
        raise BatchEncodeError(f"{label}: {column.null_count()} nulls in a field that is not optional")
    kind, buffers = _buffers(node, column, label)
    values, offsets = buffers
    leaves.append((kind + (0 if valid is None else OPTIONAL), valid, values, offsets))


def _buffers(node: nodes.Node, column: pl.Series, label: str) -> tuple[int, tuple[bytes, bytes | None]]:
    """The leaf's kind and its values (a null's slot filled, never read) as the Rust writer reads them."""
    kind = kind_of(node)
    if isinstance(node, nodes.Decimal):
        high, low = columns.unscaled(encoder.cast(column, nodes.dtype(node), label), node.precision)
        wide = np.empty((len(low), 2), dtype="<u8")  # little-endian int128s: low half first
        wide[:, 0], wide[:, 1] = low, high.view(np.uint64)
        return kind, (wide.tobytes(), None)
    if isinstance(node, nodes.Enum):
        codes = encoder.cast(column, nodes.dtype(node), label).to_physical().cast(pl.Int64)
        return kind, (_longs(codes), None)
    assert isinstance(node, nodes.Leaf)
    if node.kind in ("string", "uuid"):
        return kind, columns.text_buffers(encoder.cast(column, pl.String(), label))
    if node.kind == "boolean":
        flags = encoder.cast(column, pl.Boolean(), label).fill_null(False).to_numpy().astype(np.uint8)
        return kind, (flags.tobytes(), None)
    if node.kind == "double":
        doubles = encoder.cast(column, pl.Float64(), label).fill_null(0.0).to_numpy()
        return kind, (np.ascontiguousarray(doubles, dtype="<f8").tobytes(), None)
    if node.kind == "timestamp":
        return kind, (_longs(encoder.micros(column, label)), None)
    dtype = pl.Int32() if node.kind == "int" else pl.Int64()
    return kind, (_longs(encoder.cast(column, dtype, label).cast(pl.Int64)), None)


def _longs(column: pl.Series) -> bytes:
    return np.ascontiguousarray(column.fill_null(0).to_numpy(), dtype="<i8").tobytes()
