"""Record bodies of one writer schema to the columns of the reader schema, all records of a batch at once.

Resolution follows the Avro specification as far as tradecore's schemas evolve: fields the reader lacks are read
and dropped, fields the writer lacks take the reader's default, ``T`` widens to ``["null", T]``, ``int`` to
``long``, and enum symbols are matched by name (the reader's enum default for a symbol it lacks). Any other
difference is a ``BatchSchemaError`` when the reader is built, as a schema-registry compatibility check would say.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from schemas.batch import columns, nodes
from schemas.batch.errors import BatchSchemaError
from schemas.batch.wire import Cursor, Ints

# What Python's datetime (and so fastavro) can hold, in microseconds since the epoch.
MIN_MICROS = int((datetime.min.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**6
MAX_MICROS = int((datetime.max.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 10**6)


class BodyReader:
    """Reads bodies written with ``writer`` as ``reader`` values; ``read`` gives a frame of the reader's fields."""

    def __init__(self, writer: nodes.Record, reader: nodes.Record) -> None:
        _check(writer, reader, reader.name)
        self.writer, self.reader = writer, reader

    def read(self, cursor: Cursor, buffer: pl.Series) -> pl.DataFrame:
        """The reader's columns for every record under ``cursor``; failed records get a reason there and garbage
        in their row (the caller drops them)."""
        rows = np.arange(len(cursor.pos), dtype=np.int64)
        return _Reading(cursor, buffer).record(self.writer, self.reader, rows, self.reader.name).struct.unnest()


def _check(writer: nodes.Node, reader: nodes.Node, label: str) -> None:
    if isinstance(reader, nodes.Optional) and not isinstance(writer, nodes.Optional):
        _check(writer, reader.value, label)
    elif isinstance(writer, nodes.Record) and isinstance(reader, nodes.Record):
        theirs = {field.name: field for field in writer.fields}
        for field in reader.fields:
            if field.name in theirs:
                _check(theirs[field.name].node, field.node, f"{label}.{field.name}")
            elif not field.has_default:
                raise BatchSchemaError(f"{label}.{field.name}: not written and without a default")
    elif isinstance(writer, nodes.Optional) and isinstance(reader, nodes.Optional):
        _check(writer.value, reader.value, label)
    elif isinstance(writer, nodes.Map) and isinstance(reader, nodes.Map):
        _check(writer.values, reader.values, f"{label}[]")
    elif isinstance(writer, nodes.Enum) and isinstance(reader, nodes.Enum):
        lacking = set(writer.symbols) - set(reader.symbols)
        if lacking and reader.default is None:
            raise BatchSchemaError(f"{label}: symbols {sorted(lacking)} are not in the reader's enum")
    elif writer != reader and not (writer == nodes.Leaf("int") and reader == nodes.Leaf("long")):
        raise BatchSchemaError(f"{label}: written as {writer}, read as {reader}: not a compatible change")


class _Reading:
    def __init__(self, cursor: Cursor, buffer: pl.Series) -> None:
        self.cursor, self.buffer = cursor, buffer

    def value(self, writer: nodes.Node, reader: nodes.Node, rows: Ints, label: str) -> pl.Series:
        if isinstance(reader, nodes.Optional):
            if not isinstance(writer, nodes.Optional):
                return self.value(writer, reader.value, rows, label)
            return self.optional(writer, reader, rows, label)
        if isinstance(writer, nodes.Record) and isinstance(reader, nodes.Record):
            return self.record(writer, reader, rows, label)
        if isinstance(writer, nodes.Enum) and isinstance(reader, nodes.Enum):
            return self.enum(writer, reader, rows, label)
        if isinstance(writer, nodes.Map) and isinstance(reader, nodes.Map):
            return self.map(writer, reader, rows, label)
        if isinstance(writer, nodes.Decimal):
            return self.decimal(writer, rows, label)
        assert isinstance(writer, nodes.Leaf)
        return self.leaf(writer.kind, nodes.dtype(reader), rows, label)

    def record(self, writer: nodes.Record, reader: nodes.Record, rows: Ints, label: str) -> pl.Series:
        wanted = {field.name: field for field in reader.fields}
        read: dict[str, pl.Series] = {}
        for field in writer.fields:  # in the writer's order: that is the order of the bytes
            theirs = wanted.get(field.name)
            target = theirs.node if theirs is not None else field.node
            read[field.name] = self.value(field.node, target, rows, f"{label}.{field.name}")
        out = [read[f.name].alias(f.name) if f.name in read else _constant(f, len(rows)) for f in reader.fields]
        return pl.DataFrame(out, schema={f.name: nodes.dtype(f.node) for f in reader.fields}).to_struct(label)

    def optional(self, writer: nodes.Optional, reader: nodes.Optional, rows: Ints, label: str) -> pl.Series:
        branch = self.cursor.long(rows, label)
        odd = (branch != 0) & (branch != 1)
        if odd.any():
            self.cursor.fail(rows[odd], f"{label}: union branch out of range")
        present = branch == 1
        inner = self.value(writer.value, reader.value, rows[present], label)
        index = np.full(len(rows), -1, dtype=np.int64)
        index[present] = np.arange(int(present.sum()))
        gather = pl.Series(index).set(pl.Series(~present), None)
        return inner.gather(gather)

    def enum(self, writer: nodes.Enum, reader: nodes.Enum, rows: Ints, label: str) -> pl.Series:
        index = self.cursor.long(rows, label)
        bad = (index < 0) | (index >= len(writer.symbols))
        if bad.any():
            self.cursor.fail(rows[bad], f"{label}: enum index out of range")
        symbols = reader.symbols
        mapped = np.array(
            [symbols.index(s) if s in symbols else symbols.index(reader.default or "") for s in writer.symbols]
        )
        codes = mapped[np.where(bad, 0, index)]
        return pl.Series(symbols, dtype=pl.Enum(list(symbols))).gather(codes)

    def decimal(self, node: nodes.Decimal, rows: Ints, label: str) -> pl.Series:
        start, length = self.cursor.blob(rows, label)
        wide = length > 16
        if wide.any():
            self.cursor.fail(rows[wide], f"{label}: decimal wider than 16 bytes")
            length = np.where(wide, 0, length)
        # Each value right-aligned and sign-extended in 8 bytes (16 when a value needs more): one gather per value.
        span = 8 if node.precision <= 18 and not (length > 8).any() else 16
        first = self.cursor.buf[np.minimum(start, self.cursor.limit)]
        negative = (length > 0) & (first >= 0x80)
        index = start[:, None] + np.arange(span) - (span - length)[:, None]
        big = np.where(
            index >= start[:, None],
            self.cursor.buf[np.clip(index, 0, self.cursor.limit)],
            np.where(negative, np.uint8(0xFF), np.uint8(0))[:, None],
        )
        low = big[:, span - 8 :].copy().view(">u8").reshape(-1).astype(np.uint64)
        if span == 8:
            high, wide = low.view(np.int64) >> 63, np.zeros(len(rows), dtype=bool)
        else:
            high = big[:, :8].copy().view(">i8").reshape(-1).astype(np.int64)
            wide = high != (low.view(np.int64) >> 63) if node.precision <= 18 else np.zeros(len(rows), dtype=bool)
            high = np.where(wide, 0, high)
            low = np.where(wide, np.uint64(0), low)
        column = columns.decimals(high, low, node.precision, node.scale)
        wide |= column.is_null().to_numpy()
        if wide.any():
            self.cursor.fail(rows[wide], f"{label}: decimal beyond its precision {node.precision}")
        return column.fill_null(0) if wide.any() else column

    def map(self, writer: nodes.Map, reader: nodes.Map, rows: Ints, label: str) -> pl.Series:
        owners: list[Ints] = []
        keys: list[pl.Series] = []
        values: list[pl.Series] = []
        left = self._block(rows, label)
        keep = (left > 0) & self.cursor.ok[rows]
        active, left = rows[keep], left[keep]
        while len(active):
            keys.append(self.string(active, f"{label} key"))
            values.append(self.value(writer.values, reader.values, active, f"{label} value"))
            owners.append(np.searchsorted(rows, active))  # rows are ascending: a record's place among them
            left = left - 1
            more = left > 0
            done = ~more & self.cursor.ok[active]
            if done.any():  # a block ended: the next count follows (0 ends the map)
                left[done] = self._block(active[done], label)
            keep = (left > 0) & self.cursor.ok[active]
            active, left = active[keep], left[keep]
        entry = pl.Struct({"key": pl.String(), "value": nodes.dtype(reader.values)})
        if not owners:
            return pl.Series(label, [[]] * len(rows), dtype=pl.List(entry))
        flat = pl.DataFrame({"owner": np.concatenate(owners), "key": pl.concat(keys), "value": pl.concat(values)})
        # Entries were read one per map per step: a stable sort by owner puts each map's entries back in order.
        lists = (
            flat.sort("owner", maintain_order=True)
            .group_by("owner", maintain_order=True)
            .agg(pl.struct("key", "value").alias("entries"))
        )
        every = pl.DataFrame({"owner": np.arange(len(rows), dtype=np.int64)})
        joined = every.join(lists, on="owner", how="left", maintain_order="left")
        return joined["entries"].fill_null(pl.lit([], dtype=pl.List(entry))).alias(label)

    def _block(self, rows: Ints, label: str) -> Ints:
        count = self.cursor.long(rows, f"{label} block count")
        negative = count < 0
        if negative.any():  # a negative count is followed by the block's size in bytes, which we need not use
            self.cursor.long(rows[negative], f"{label} block size")
        return np.abs(count)

    def string(self, rows: Ints, label: str) -> pl.Series:
        start, length = self.cursor.blob(rows, label)
        raw = columns.binaries(self.buffer, start, length)
        try:
            return raw.cast(pl.String)
        except pl.exceptions.ComputeError:  # invalid UTF-8 somewhere: find which records, only on this rare path
            bad = np.array([not _is_utf8(value) for value in raw.to_list()], dtype=bool)
            self.cursor.fail(rows[bad], f"{label}: not UTF-8")
            return raw.set(pl.Series(bad), b"").cast(pl.String)

    def leaf(self, kind: str, dtype: pl.DataType, rows: Ints, label: str) -> pl.Series:
        if kind in ("string", "uuid"):
            return self.string(rows, label)
        if kind == "boolean":
            return pl.Series(self.cursor.fixed(rows, 1, label)[:, 0] != 0)
        if kind == "double":
            return pl.Series(self.cursor.fixed(rows, 8, label).copy().view("<f8").reshape(-1))
        value = self.cursor.long(rows, label)
        if kind == "int":
            outside = (value < -(2**31)) | (value >= 2**31)
            if outside.any():
                self.cursor.fail(rows[outside], f"{label}: int out of range")
            return pl.Series(np.where(outside, 0, value)).cast(dtype)
        if kind == "timestamp":
            outside = (value < MIN_MICROS) | (value > MAX_MICROS)
            if outside.any():
                self.cursor.fail(rows[outside], f"{label}: timestamp outside years 1-9999")
            return pl.Series(value).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return pl.Series(value)


def _constant(field: nodes.Field, n: int) -> pl.Series:
    """A reader field the writer lacks: its default in every row."""
    dtype = nodes.dtype(field.node)
    default = field.default
    if isinstance(field.node, nodes.Map):
        default = [{"key": k, "value": v} for k, v in (default or {}).items()]
    return pl.Series(field.name, [default] * n, dtype=dtype)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True
