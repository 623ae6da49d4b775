"""The read models' queries, compiled from the table definitions once per shape into psycopg SQL.

A shape is the table, which columns are filtered and how, and whether the answer is a keyset page. Every answer
carries its projection's checkpoint, so each statement reads the checkpoint and the rows together: one round trip,
one snapshot (the rows hold at least everything up to the checkpoint they come with). Compiling here, once, is
what keeps SQLAlchemy off the request path: building, caching and compiling a Core statement per request was a
third of a read's server time.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    DateTime,
    Select,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by

from projections import tables

Op = Literal["=", ">=", "<", "any"]  # "any": the column is one of a list (a trader's accounts)
Shape = tuple[tuple[str, Op], ...]

_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Condition:
    """``column op value``: one filter of a read."""

    column: str
    op: Op
    value: Any


def shape(conditions: Sequence[Condition]) -> Shape:
    return tuple((c.column, c.op) for c in conditions)


def params(conditions: Sequence[Condition]) -> dict[str, Any]:
    """The values of ``conditions`` under the names their shape's statement binds them to."""
    return {f"p{i}": c.value for i, c in enumerate(conditions)}


@dataclass(frozen=True)
class Statement:
    """A compiled read: its SQL, the table's column names in the order the rows hold them after the checkpoint's
    two columns (its offsets as JSON, its latest commit time), which of those columns are timestamps, and the
    primary key's (never null in a row: null means no row matched).

    Names are plain ``str``: SQLAlchemy's ``quoted_name`` is a subclass, which pydantic-core serializes through
    a slow path (attribute look-ups on every key of every row)."""

    sql: str
    columns: tuple[str, ...]
    timestamps: tuple[int, ...]
    key: tuple[str, ...]


def _condition(table: Table, i: int, column: str, op: Op) -> ColumnElement[bool]:
    c = table.c[column]
    value: BindParameter[Any] = bindparam(f"p{i}")
    if op == "=":
        return c == value
    if op == ">=":
        return c >= value
    if op == "<":
        return c < value
    # `= ANY(array)`: one parameter whatever the number of accounts, so one prepared statement serves them all.
    return c == any_(bindparam(f"p{i}", type_=ARRAY(String)))


def _checkpoint() -> Any:
    """One row: the projection's offsets as a JSON list of {topic, partition, offset}, and its latest commit."""
    c = tables.projection_checkpoints.c
    offset = func.json_build_object(
        literal_column("'topic'"), c.topic, literal_column("'partition'"), c.partition,
        literal_column("'offset'"), c.offset,
    )  # fmt: skip
    offsets = func.coalesce(func.json_agg(aggregate_order_by(offset, c.topic, c.partition)), literal_column("'[]'"))
    return (
        select(offsets.label("checkpoint_offsets"), func.max(c.updated_at).label("checkpoint_updated_at"))
        .where(c.projection == bindparam("projection"))
        .subquery("checkpoint")
    )


@functools.cache
def read(schema: str, table: Table, conditions: Shape, *, paged: bool, after: bool) -> Statement:
    """The rows of ``table`` matching ``conditions`` beside the checkpoint of the projection bound as
    ``projection``; ``paged``: in primary-key order, ``limit`` rows at most, and with ``after`` those past the key
    bound as ``k0``, ``k1``…. No matching row: one row of the checkpoint and nulls."""
    pk = list(table.primary_key.columns)
    rows: Select[Any] = select(table).where(*(_condition(table, i, c, op) for i, (c, op) in enumerate(conditions)))
    if paged:
        rows = rows.order_by(*pk).limit(bindparam("limit"))
        if after:
            rows = rows.where(tuple_(*pk) > tuple_(*(bindparam(f"k{i}") for i in range(len(pk)))))
    found = rows.subquery("found")
    checkpoint = _checkpoint()
    query = select(checkpoint.c.checkpoint_offsets, checkpoint.c.checkpoint_updated_at, *found.c).select_from(
        checkpoint.outerjoin(found, true())
    )
    if paged:  # the order of the subquery's rows is not the join's
        query = query.order_by(*(found.c[c.name] for c in pk))
    compiled = query.compile(dialect=_DIALECT, schema_translate_map={None: schema}, render_schema_translate=True)
    columns = tuple(str(c.name) for c in table.columns)
    timestamps = tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, DateTime))
    return Statement(compiled.string, columns, timestamps, tuple(str(c.name) for c in pk))


@functools.cache
def passed(schema: str) -> str:
    """The next offset a projection reads in one partition (bound as ``projection``, ``topic``, ``partition``)."""
    c = tables.projection_checkpoints.c
    query = select(c.offset).where(
        c.projection == bindparam("projection"), c.topic == bindparam("topic"), c.partition == bindparam("partition")
    )
    return query.compile(dialect=_DIALECT, schema_translate_map={None: schema}, render_schema_translate=True).string
