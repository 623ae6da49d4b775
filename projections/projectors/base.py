"""What every projector is: the topics it reads, the tables it owns, and how a batch of events becomes rows.

A projector never commits: the runner hands it a ``Writer`` on the batch's transaction and writes the projector's
checkpoint in that same transaction. Two shapes cover the read models:

Events reach projectors as the batch decoder's frames (``schemas.batch``), one per event type, each row with its
place in the batch and in the log (``projectors.columns``). Each projector names the events it reads.

* ``AppendProjector``: one row per event (an audit trail, fills), its columns computed as polars expressions and
  written with one binary COPY (Arrow to the Postgres binary format by pgpq): no Python per row;
* ``FoldProjector``: one row per key, the fold of every event of that key so far; the rows a batch touches are
  loaded once, folded in memory event by event (as the dicts the per-record deserializer reads), and written back
  with one COPY into a staging table and one ``INSERT ... ON CONFLICT DO UPDATE``.

Rows must not depend on how events of *different* partitions interleave (a rebuild reads them in another
interleaving than the live run did): each fold either reads one partition per key, or merges order-independently.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

import polars as pl
import psycopg
from pgpq import ArrowToPostgresBinaryEncoder
from pgpq.encoders import LargeStringEncoderBuilder
from pgpq.schema import Jsonb
from psycopg import sql
from psycopg.rows import dict_row
from sqlalchemy import Table

from projections.projectors.columns import SOURCE, dicts
from schemas.batch import INDEX
from schemas.events import EVENT_TYPES

Row = dict[str, Any]
Frames = Mapping[str, pl.DataFrame]
"""A batch's events for one projector: event name -> its rows (``projectors.columns``), each in log order."""


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded event and where it sits in the log (topic without the namespace prefix).

    ``type`` is the event's name (``OrderFilled``); ``event`` its fields as the per-record deserializer reads them
    with the current schema (``Decimal``, UTC ``datetime``, enums as their ``str`` value, maps and the envelope
    dicts), but the envelope's ``event_id`` as text; and its row's ``index``, ``topic``, ``partition``, ``offset``.
    """

    topic: str
    partition: int
    offset: int
    type: str
    event: dict[str, Any]


class Writer:
    """The batch's transaction, in one namespace's schema.

    With ``collect``, ``changed`` keeps every row written, per table, for the live feed (``projections.live``).
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        reject: Callable[[Record, str], None],
        collect: bool = False,
    ) -> None:
        self.conn = conn
        self.schema = schema
        self.reject = reject
        self.changed: dict[str, list[Row]] | None = {} if collect else None
        self.appended: dict[str, list[pl.DataFrame]] | None = {} if collect else None  # the same, as frames
        self._staged: set[str] = set()

    def _note(self, table: Table, rows: Sequence[Row]) -> None:
        if self.changed is not None:
            self.changed.setdefault(table.name, []).extend(rows)

    def name(self, table: Table) -> sql.Composable:
        return sql.Identifier(self.schema, table.name)

    def append(self, table: Table, rows: pl.DataFrame) -> None:
        """COPY ``rows`` (a column per column of ``table``, any order; a missing one is NULL) into ``table``.

        Binary, encoded from Arrow by pgpq in one call: no Python per row or per value."""
        if rows.is_empty():
            return
        shaped = self._copy_frame(self.name(table), table, rows)
        if self.appended is not None:
            self.appended.setdefault(table.name, []).append(shaped)

    def upsert_frame(self, table: Table, rows: pl.DataFrame) -> None:
        """``upsert`` for rows given as columns (as ``append`` takes them): no Python per row on the way in."""
        if rows.is_empty():
            return
        stage = self._stage(table)
        shaped = self._copy_frame(stage, table, rows)
        self._merge(table, stage)
        if self.changed is not None:
            self._note(table, shaped.to_dicts())

    def _copy_frame(self, target: sql.Composable, table: Table, rows: pl.DataFrame) -> pl.DataFrame:
        """COPY ``rows`` into ``target``, a table of ``table``'s shape, as ``append`` does; the rows as copied."""
        shaped = rows.select(
            [
                (pl.col(c.name) if c.name in rows.columns else pl.lit(None)).cast(_pl_type(c)).alias(c.name)
                for c in table.columns
            ]
        )
        arrow = shaped.to_arrow()
        encoders = {
            field.name: LargeStringEncoderBuilder.new_with_output(field, Jsonb())
            if _pg_type(table.c[field.name]) == "jsonb"
            else ArrowToPostgresBinaryEncoder.infer_encoder(field)
            for field in arrow.schema
        }
        encoder = ArrowToPostgresBinaryEncoder.new_with_encoders(arrow.schema, encoders)
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            target, sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)
        )
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(encoder.write_header())
            for batch in arrow.to_batches():
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())
        return shaped

    def _copy(self, target: sql.Composable, table: Table, rows: Sequence[Row]) -> None:
        """COPY ``rows`` into ``target``, a table of ``table``'s shape; a column a row lacks is NULL.

        Binary, each column's type named up front: psycopg then dumps every value with the column's own dumper in C,
        without a type look-up per value or the text form's formatting and parsing (half the time of text COPY)."""
        columns = [c.name for c in table.columns]
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types([_pg_type(c) for c in table.columns])
            for row in rows:
                copy.write_row([row.get(c) for c in columns])

    def load(self, table: Table, keys: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], Row]:
        """The rows of ``table`` whose primary keys are among ``keys``."""
        wanted = list(keys)
        if not wanted:
            return {}
        pk = [c.name for c in table.primary_key.columns]
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(*self._by_keys(table, wanted))
            return {tuple(row[name] for name in pk): row for row in cur.fetchall()}

    def load_frame(self, table: Table, keys: Iterable[tuple[Any, ...]]) -> pl.DataFrame:
        """``load`` as columns (``frame_schema``), in no particular order.

        Decimals come as their text and times as epoch microseconds, made columns by polars: a ``Decimal`` and a
        ``datetime`` made per value cost more than the rest of the orders' fold."""
        wanted = list(keys)
        schema = frame_schema(table)
        if not wanted:
            return pl.DataFrame(schema=schema)
        sent = {name: _SENT.get(type(dtype)) for name, dtype in schema.items()}
        columns = [
            sql.Identifier(name) if how is None else sql.SQL(how[1]).format(sql.Identifier(name))
            for name, how in sent.items()
        ]
        with self.conn.cursor() as cur:
            cur.execute(*self._by_keys(table, wanted, columns))
            found = pl.DataFrame(
                cur.fetchall(),
                schema={n: schema[n] if how is None else how[0] for n, how in sent.items()},
                orient="row",
            )
        return found.with_columns(
            pl.from_epoch(name, "us").dt.replace_time_zone("UTC")
            if isinstance(dtype, pl.Datetime)
            else pl.col(name).cast(dtype)
            for name, dtype in schema.items()
            if sent[name] is not None
        )

    def _by_keys(
        self, table: Table, keys: list[tuple[Any, ...]], columns: Sequence[sql.Composable] | None = None
    ) -> tuple[sql.Composed, list[list[Any]]]:
        """The statement that selects ``columns`` (every column of ``table``, by default) of ``table``'s rows by
        primary key, and its parameters."""
        pk = [c.name for c in table.primary_key.columns]
        types = [_pg_type(table.c[name]) + "[]" for name in pk]
        statement = sql.SQL("SELECT {} FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
            sql.SQL(", ").join(columns or [sql.Identifier(c.name) for c in table.columns]),
            self.name(table),
            sql.SQL(", ").join(map(sql.Identifier, pk)),
            sql.SQL(", ").join(sql.SQL("%s::" + t) for t in types),
        )
        return statement, [list(column) for column in zip(*keys, strict=True)]

    def load_where(self, table: Table, column: str, values: Sequence[Any]) -> dict[tuple[Any, ...], Row]:
        """The rows of ``table`` whose ``column`` is among ``values``, by primary key."""
        if not values:
            return {}
        pk = [c.name for c in table.primary_key.columns]
        statement = sql.SQL("SELECT * FROM {} WHERE {} = ANY(%s)").format(self.name(table), sql.Identifier(column))
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(statement, [list(values)])
            return {tuple(row[name] for name in pk): row for row in cur.fetchall()}

    def upsert(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert ``rows``, or replace the rows with their primary keys: COPY to a staging table, one INSERT."""
        if not rows:
            return
        stage = self._stage(table)
        self._copy(stage, table, rows)
        self._merge(table, stage)
        self._note(table, rows)

    def _stage(self, table: Table) -> sql.Composable:
        """The session's staging table of ``table``'s shape (emptied at commit)."""
        stage = sql.Identifier(f"stage_{table.name}")
        if table.name not in self._staged:
            self.conn.execute(
                sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
                    stage, self.name(table)
                )
            )
            self._staged.add(table.name)
        return stage

    def _merge(self, table: Table, stage: sql.Composable) -> None:
        """The staged rows into ``table``, replacing those with their primary keys; the stage emptied."""
        columns = [c.name for c in table.columns]
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        pk = [c.name for c in table.primary_key.columns]
        updates = [sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c not in pk]
        self.conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
                self.name(table),
                names,
                names,
                stage,
                sql.SQL(", ").join(map(sql.Identifier, pk)),
                sql.SQL(", ").join(updates),
            )
        )
        self.conn.execute(sql.SQL("TRUNCATE {}").format(stage))


class Projector(ABC):
    """One read model: the topics it reads (without prefix) and the tables it owns."""

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]
    events: ClassVar[frozenset[str]]  # the events (by name) it is given; the others of its topics it never sees
    tables: ClassVar[tuple[Table, ...]]

    @abstractmethod
    def project(self, frames: Frames, writer: Writer) -> None:
        """Write what the events of ``frames`` change; ``writer.reject`` a record it cannot use."""


def records(frames: Frames) -> list[Record]:
    """The events of ``frames`` one by one, in batch order (log order per partition), for a fold."""
    found = [
        (row[INDEX], Record(row["topic"], row["partition"], row["offset"], name, row))
        for name, frame in frames.items()
        for row in dicts(frame)
    ]
    found.sort(key=lambda pair: pair[0])
    return [record for _, record in found]


class AppendProjector(Projector):
    """One row per event it reads, appended: its columns are expressions over the event's frame."""

    @abstractmethod
    def columns(self, event: str, frame: pl.DataFrame) -> list[pl.Expr]:
        """The columns of the rows events named ``event`` add (``frame``: their decoded rows), but the source's."""

    def project(self, frames: Frames, writer: Writer) -> None:
        parts = [
            frame.select(pl.col(INDEX), *map(pl.col, SOURCE), *self.columns(event, frame))
            for event, frame in frames.items()
            if not frame.is_empty()
        ]
        if parts:
            writer.append(self.tables[0], pl.concat(parts, how="vertical_relaxed").sort(INDEX).drop(INDEX))


class FoldProjector(Projector):
    """One row per key: each event folded into the current rows of the keys it touches."""

    @abstractmethod
    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        """The primary keys of the rows ``record`` changes (none, one, or several)."""

    @abstractmethod
    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        """The row of ``key`` after ``record``, from the row before it (None when there is none yet)."""

    def project(self, frames: Frames, writer: Writer) -> None:
        keyed = []
        for record in records(frames):
            try:
                keyed += [(key, record) for key in self.keys(record)]
            except Exception as err:  # one bad event must not stop the read model
                writer.reject(record, f"{self.name}: {type(err).__name__}: {err}")
        if not keyed:
            return
        rows: dict[tuple[Any, ...], Row] = writer.load(self.tables[0], {k for k, _ in keyed})
        changed = set()
        for key, record in keyed:
            try:
                rows[key] = self.fold(rows.get(key), key, record)
            except Exception as err:
                writer.reject(record, f"{self.name}: {type(err).__name__}: {err}")
                continue
            changed.add(key)
        writer.upsert(self.tables[0], [rows[key] for key in changed])


def events_with(field: str, topics: Iterable[str]) -> frozenset[str]:
    """The events written to ``topics`` that have ``field``."""
    return frozenset(
        name
        for name, cls in EVENT_TYPES.items()
        if cls.route().topic in topics and field in {f.name for f in dataclasses.fields(cls)}
    )


_JSON_AS_IS = (str, int, float)  # bool is an int


def payload(event: Mapping[str, Any]) -> dict[str, Any]:
    """The event's own fields (not the envelope), in schema order, as JSON values; decimals as exact strings."""
    return {name: _json(value) for name, value in event.items() if name != "envelope"}


def _json(value: Any) -> Any:
    if value is None or isinstance(value, _JSON_AS_IS):  # most payload values: one check, not five (Mapping's is slow)
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


_PG_TYPES = {
    "String": "text",
    "Integer": "int4",
    "BigInteger": "int8",
    "Numeric": "numeric",
    "Double": "float8",
    "Boolean": "bool",
    "DateTime": "timestamptz",
    "JSONB": "jsonb",
    "JSON": "json",
}


_PL_TYPES: dict[str, pl.DataType] = {
    "text": pl.String(),
    "int4": pl.Int32(),
    "int8": pl.Int64(),
    "float8": pl.Float64(),
    "bool": pl.Boolean(),
    "timestamptz": pl.Datetime("us", "UTC"),
    "jsonb": pl.String(),
    "json": pl.String(),
}


# How ``load_frame`` has Postgres send a column of these types: as what, by which SQL.
_SENT: dict[type[pl.DataType], tuple[pl.DataType, str]] = {
    pl.Decimal: (pl.String(), "{}::text"),
    pl.Datetime: (pl.Int64(), "(extract(epoch FROM {}) * 1000000)::int8"),
}


def frame_schema(table: Table) -> dict[str, pl.DataType]:
    """The polars types of ``table``'s columns, as ``Writer.append`` and ``Writer.upsert_frame`` COPY them."""
    return {c.name: _pl_type(c) for c in table.columns}


def _pl_type(column: Any) -> pl.DataType:
    """The polars type a column's values are COPYed from: numeric keeps the frame's exact decimal (any scale)."""
    found = _pg_type(column)
    if found == "numeric":
        return pl.Decimal(38, column.type.scale)
    return _PL_TYPES[found]


def _pg_type(column: Any) -> str:
    """The Postgres type psycopg dumps ``column``'s values as; KeyError for a column type not mapped here yet."""
    return _PG_TYPES[type(column.type).__name__]
