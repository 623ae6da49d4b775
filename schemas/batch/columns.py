"""numpy arrays to polars columns and back, for the types polars has no numpy form of (decimals, strings)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import tradecore_avro

from schemas.batch.wire import Bytes, Ints

_LOW64 = 2**64


def decimals(high: Ints, low: npt.NDArray[np.uint64], precision: int, scale: int) -> pl.Series:
    """The ``decimal(precision, scale)`` column of unscaled 128-bit values ``high * 2**64 + low``; null where a value
    does not fit the precision."""
    n = len(low)
    if precision <= 18:
        unscaled = pl.Series(low.view(np.int64)).cast(pl.Decimal(38, 0))
    else:
        pairs = np.empty((n, 2), dtype=np.int64)
        pairs[:, 0], pairs[:, 1] = low.view(np.int64), high
        packed = pl.Series([pairs.tobytes()], dtype=pl.Binary)
        unscaled = packed.bin.reinterpret(dtype=pl.Array(pl.Int128, n), endianness="little").explode()
        unscaled = unscaled.cast(pl.Decimal(38, 0)) if n else pl.Series([], dtype=pl.Decimal(38, 0))
    # Multiplying by 10**-scale keeps the unscaled integer and sets the scale: a reinterpretation, not arithmetic.
    unit = pl.lit(Decimal(1).scaleb(-scale), dtype=pl.Decimal(38, scale))
    return pl.select((pl.lit(unscaled) * unit).cast(pl.Decimal(precision, scale), strict=False)).to_series()


def unscaled(column: pl.Series, precision: int) -> tuple[Ints, npt.NDArray[np.uint64]]:
    """The unscaled values of a decimal column as (high, low) 64-bit halves; nulls come out as 0."""
    physical = column.to_physical().fill_null(0)
    low = physical.cast(pl.Int64, wrap_numerical=True).to_numpy().view(np.uint64)
    if precision <= 18:
        high = low.view(np.int64) >> 63
    else:
        high = pl.select(pl.lit(physical) // pl.lit(_LOW64, dtype=pl.Int128)).to_series().cast(pl.Int64).to_numpy()
    return np.ascontiguousarray(high, dtype=np.int64), np.ascontiguousarray(low)


def binaries(buffer: pl.Series, starts: Ints, lengths: Ints) -> pl.Series:
    """Slices of the one-element binary ``buffer`` as a binary column."""
    if not len(starts):
        return pl.Series([], dtype=pl.Binary)
    return pl.select(pl.lit(buffer).bin.slice(pl.Series(starts), pl.Series(lengths))).to_series()


def utf8(column: pl.Series) -> tuple[Ints, Bytes]:
    """The UTF-8 lengths of a string column and all its bytes one after another (nulls are empty)."""
    lengths = column.str.len_bytes().fill_null(0).cast(pl.Int64).to_numpy()
    text: str = column.str.join("", ignore_nulls=True).item() if len(column) else ""
    return np.ascontiguousarray(lengths), np.frombuffer(text.encode(), dtype=np.uint8)


def uuid5(namespace: uuid.UUID, names: pl.Series) -> pl.Series:
    """``str(uuid.uuid5(namespace, name))`` for every name of a string column, hashed by the Rust code (SHA-1 has no
    column form; one ``hashlib`` call a row was a tenth of a file ingest's CPU)."""
    data, offsets = text_buffers(names)
    text = tradecore_avro.uuid5(namespace.bytes, data, offsets)
    ends = pa.py_buffer(np.arange(len(names) + 1, dtype="<i8") * 36)
    ids = pl.from_arrow(pa.Array.from_buffers(pa.large_string(), len(names), [None, ends, pa.py_buffer(text)]))
    assert isinstance(ids, pl.Series)
    return ids


def text_buffers(column: pl.Series) -> tuple[bytes, bytes]:
    """A string column's UTF-8 text as polars holds it, and the n + 1 int64 offsets of each row's in it (a null's
    row is empty): Arrow's own buffers, with no join into one Python str."""
    text = column.to_arrow(compat_level=pl.CompatLevel.oldest())
    _, starts, data = text.buffers()
    offsets = np.frombuffer(starts, dtype="<i8", count=len(text) + 1, offset=text.offset * 8)
    return (b"" if data is None else data.to_pybytes()), offsets.tobytes()
