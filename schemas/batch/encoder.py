"""Columns of one event type to Avro bodies, all records at once, byte for byte as fastavro writes them."""

from __future__ import annotations

import numpy as np
import polars as pl

from schemas.batch import columns, nodes, wire
from schemas.batch.errors import BatchEncodeError
from schemas.batch.wire import Pieces

_BYTE_BOUNDS = np.array([2 ** (8 * k - 1) for k in range(1, 8)], dtype=np.int64)


def record(node: nodes.Record, frame: pl.DataFrame, label: str) -> list[Pieces]:
    """The bodies of ``frame``'s rows, whose columns are ``node``'s fields (extra columns are ignored), as the
    pieces each field adds to every record; ``wire.concat`` joins them once, at the end."""
    parts: list[Pieces] = []
    for field in node.fields:
        if field.name not in frame.columns:
            raise BatchEncodeError(f"{label}: no column {field.name!r}", hint=f"columns: {frame.columns}")
        parts += value(field.node, frame.get_column(field.name), f"{label}.{field.name}")
    return parts


def value(node: nodes.Node, column: pl.Series, label: str) -> list[Pieces]:
    if isinstance(node, nodes.Optional):
        present = column.is_not_null().to_numpy()
        branch = wire.fixed(np.where(present, np.uint8(2), np.uint8(0))[:, None])  # varint of branch 0 or 1
        inner = value(node.value, column.filter(pl.Series(present)), label)
        return [branch, *(wire.spread(part, present) for part in inner)]
    if column.null_count():
        raise BatchEncodeError(f"{label}: {column.null_count()} nulls in a field that is not optional")
    if isinstance(node, nodes.Record):
        return record(node, column.struct.unnest(), label)
    if isinstance(node, nodes.Decimal):
        return decimal(node, cast(column, nodes.dtype(node), label))
    if isinstance(node, nodes.Enum):
        codes = cast(column, nodes.dtype(node), label).to_physical().cast(pl.Int64).to_numpy()
        return [wire.longs(codes)]
    if isinstance(node, nodes.Map):
        return mapping(node, column, label)
    return leaf(node.kind, column, label)


def leaf(kind: str, column: pl.Series, label: str) -> list[Pieces]:
    if kind in ("string", "uuid"):
        lengths, data = columns.utf8(cast(column, pl.String(), label))
        return wire.blobs(lengths, data)
    if kind == "boolean":
        return [wire.fixed(cast(column, pl.Boolean(), label).to_numpy().astype(np.uint8)[:, None])]
    if kind == "double":
        doubles = np.ascontiguousarray(cast(column, pl.Float64(), label).to_numpy(), dtype="<f8")
        return [wire.fixed(doubles.view(np.uint8).reshape(-1, 8))]
    if kind == "timestamp":
        return [wire.longs(micros(column, label).to_numpy().astype(np.int64))]
    dtype = pl.Int32() if kind == "int" else pl.Int64()
    return [wire.longs(cast(column, dtype, label).cast(pl.Int64).to_numpy())]


def micros(column: pl.Series, label: str) -> pl.Series:
    """A timestamp column as microseconds since the epoch, UTC; a naive time is refused."""
    if not isinstance(column.dtype, pl.Datetime) or column.dtype.time_zone is None:
        raise BatchEncodeError(
            f"{label}: {column.dtype} is not a time-zone-aware datetime",
            hint="a naive time would be stored as local time; use pl.Datetime('us', 'UTC')",
        )
    return column.dt.convert_time_zone("UTC").cast(pl.Datetime("us", "UTC")).to_physical()


def decimal(node: nodes.Decimal, column: pl.Series) -> list[Pieces]:
    """fastavro's bytes: the unscaled value in big-endian two's complement, ``bit_length(|v|) // 8 + 1`` long."""
    high, low = columns.unscaled(column, node.precision)
    if node.precision <= 18:  # the value fits 63 bits: 64-bit arithmetic all the way
        signed = low.view(np.int64)
        # bit_length(|v|) >= 8k exactly when |v| >= 2**(8k - 1)
        width = 1 + (np.abs(signed)[:, None] >= _BYTE_BOUNDS).sum(axis=1, dtype=np.int64)
        big8 = signed.astype(">i8").view(np.uint8).reshape(-1, 8)
        widest = int(width.max()) if len(width) else 1
        return [wire.longs(width), Pieces(big8[:, 8 - widest :], np.arange(8 - widest, 8) >= (8 - width)[:, None])]
    big = np.empty((len(low), 16), dtype=np.uint8)
    big[:, :8] = high.astype(">i8").view(np.uint8).reshape(-1, 8)
    big[:, 8:] = low.astype(">u8").view(np.uint8).reshape(-1, 8)
    negative = high < 0
    # |v| in 128 bits: two's complement negation of (high, low) where negative.
    abs_low = np.where(negative, ~low + np.uint64(1), low)
    abs_high = np.where(negative, ~high + (abs_low == 0), high).astype(np.int64)
    magnitude = np.empty_like(big)
    magnitude[:, :8] = abs_high.astype(">i8").view(np.uint8).reshape(-1, 8)
    magnitude[:, 8:] = abs_low.astype(">u8").view(np.uint8).reshape(-1, 8)
    nonzero = magnitude != 0
    used = np.where(nonzero.any(axis=1), 16 - nonzero.argmax(axis=1), 0)
    top = magnitude[np.arange(len(low)), np.clip(16 - used, 0, 15)]
    width = np.maximum(used + (top >= 0x80), 1).astype(np.int64)
    widest = int(width.max()) if len(width) else 0
    return [wire.longs(width), Pieces(big[:, 16 - widest :], np.arange(16 - widest, 16) >= (16 - width)[:, None])]


def mapping(node: nodes.Map, column: pl.Series, label: str) -> list[Pieces]:
    """fastavro's map: one block of all entries (count, then key and value each) and the 0 that ends it."""
    sizes = column.list.len().cast(pl.Int64).to_numpy()
    filled = sizes > 0
    entries = column.filter(pl.Series(filled)).explode()
    flat = entries.struct.unnest()
    # Entries are joined first: a map's entries, one after another, are one piece of its record.
    pieces = wire.concat(
        [*leaf("string", flat.get_column("key"), f"{label} key"), *value(node.values, flat.get_column("value"), label)]
    )
    owner = np.repeat(np.arange(len(sizes)), sizes)
    per_map = wire.packed(
        np.bincount(owner, weights=pieces.lengths, minlength=len(sizes)).astype(np.int64), pieces.data
    )
    count = wire.spread(wire.longs(sizes[filled]), filled)
    end = wire.fixed(np.zeros((len(sizes), 1), dtype=np.uint8))
    return [count, per_map, end]


def cast(column: pl.Series, dtype: pl.DataType, label: str) -> pl.Series:
    """``column`` as ``dtype``, or a ``BatchEncodeError`` naming the field whose values do not fit."""
    if column.dtype == dtype:
        return column
    try:
        return column.cast(dtype)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as err:
        raise BatchEncodeError(f"{label}: {column.dtype} values do not fit {dtype}: {err}") from err
