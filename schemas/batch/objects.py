"""Decoded frames to event objects: each column converted to Python values once, then one constructor call per row.

For consumers whose logic is written against the event classes (the stream processors): the objects equal what
``schemas.serde.EventDeserializer`` builds from the same bytes, value for value and type for type — decimals with
the schema's scale as exponent (``Decimal('0E-8')``), timestamps ``datetime`` in ``timezone.utc``, uuids ``UUID``,
enums the class's ``StrEnum`` members, maps ``dict`` — because fastavro and ``schemas.codec`` make exactly these.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import repeat
from typing import Any, TypeVar
from uuid import UUID

import polars as pl

from schemas import avsc, codec
from schemas.batch import nodes
from schemas.events import Event

E = TypeVar("E", bound=Event)
Column = Callable[[pl.Series], list[Any]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # fastavro's own: its timestamps are this plus a timedelta
_CANONICAL_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class EventBuilder:
    """Builds ``cls`` events from the rows of a frame ``schemas.batch.BatchDecoder`` decoded for it."""

    def __init__(self, cls: type[Event]) -> None:
        """Raises ``SchemaDriftError`` if ``cls`` differs from its schema (every field is then filled)."""
        codec.prepare(cls)
        self.cls = cls
        node = nodes.parse(avsc.expanded(cls.__name__))
        self._build = _record(cls, node)
        self._uuids = _uuid_columns(node, None)

    def events(self, frame: pl.DataFrame) -> list[Event | str]:
        """One event per row of ``frame``, in row order (other columns, like the batch's ``index``, are ignored);
        in place of a row the class refuses (a uuid field that is no uuid), the reason, as fastavro would refuse it.
        """
        try:
            return list(self._build(frame))
        except (ValueError, TypeError, KeyError):
            # Rare (the bytes are malformed): find the rows at fault one by one, the others still build.
            return [self._one(frame.slice(row, 1)) for row in range(frame.height)]

    def refused(self, frame: pl.DataFrame) -> dict[int, str]:
        """The rows of ``frame`` the class refuses, by position, with what ``events`` gives in their place — found
        without building the others: of a decoded value only a uuid can be refused, and one in the canonical form
        never is (``UUID`` takes it), so only rows with another form are built to see."""
        if not self._uuids or frame.height == 0:
            return {}
        odd = pl.any_horizontal(~column.str.contains(_CANONICAL_UUID).fill_null(True) for column in self._uuids)
        suspects = frame.select(odd.arg_true()).to_series().to_list()
        found = {row: self._one(frame.slice(row, 1)) for row in suspects}
        return {row: reason for row, reason in found.items() if isinstance(reason, str)}

    def _one(self, row: pl.DataFrame) -> Event | str:
        try:
            event: Event = self._build(row)[0]
        except (ValueError, TypeError, KeyError) as err:
            return f"a {self.cls.__name__} does not build: {type(err).__name__}: {err}"
        return event


def _record(cls: type, node: nodes.Record) -> Callable[[pl.DataFrame], list[Any]]:
    hints = typing.get_type_hints(cls)
    ours = {field.name for field in dataclasses.fields(cls) if field.init}
    convert = [(field.name, _column(hints[field.name], field.node)) for field in node.fields if field.name in ours]
    names = [name for name, _ in convert]

    make = _maker(cls, names)

    def build(frame: pl.DataFrame) -> list[Any]:
        columns = [column(frame.get_column(name)) for name, column in convert]
        return list(itertools.starmap(make, zip(*columns, strict=True)))

    return build


def _uuid_columns(node: nodes.Record, parent: pl.Expr | None) -> list[pl.Expr]:
    """Expressions for every uuid field of ``node``'s frame, nested records' included (null where optional)."""
    found: list[pl.Expr] = []
    for field in node.fields:
        column = pl.col(field.name) if parent is None else parent.struct.field(field.name)
        inner = field.node.value if isinstance(field.node, nodes.Optional) else field.node
        if isinstance(inner, nodes.Record):
            found += _uuid_columns(inner, column)
        elif isinstance(inner, nodes.Leaf) and inner.kind == "uuid":
            found.append(column)
    return found


def _maker(cls: type, names: list[str]) -> Callable[..., Any]:
    """A function of the field values, in ``names``' order, that makes a ``cls``.

    It fills the slots as unpickling does rather than calling ``__init__``: a keyword call of a frozen dataclass
    costs three times as much, and the values are already what ``__init__`` would store (the classes validate
    nothing; ``schemas.codec`` built them from the same values without checks either).
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} validates in __post_init__: filling its slots would skip that")
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = [f"def make({', '.join(names)}):", "    made = new(cls)"]
    for i, name in enumerate(names):
        scope[f"set{i}"] = getattr(cls, name).__set__  # the slot's descriptor
        lines.append(f"    set{i}(made, {name})")
    lines.append("    return made")
    exec("\n".join(lines), scope)  # field names of our own dataclasses: identifiers
    made: Callable[..., Any] = scope["make"]
    return made


def _column(hint: Any, node: nodes.Node) -> Column:
    """How a column of ``node`` values becomes the Python values the class field ``hint`` holds.

    Nulls are dealt with on the Python list, not by polars calls: those cost more than the values of a small batch.
    """
    optional = isinstance(node, nodes.Optional)
    if isinstance(node, nodes.Optional):
        hint, node = _optional_of(hint), node.value
    if isinstance(node, nodes.Record):
        if optional:  # no event has one: a null struct row cannot be told from a record of nulls here
            raise TypeError(f"{node.name}: optional records are not supported")
        build = _record(hint, node)
        return lambda series: build(series.struct.unnest())
    convert = _values(hint, node)
    if isinstance(node, nodes.Leaf) and node.kind == "timestamp":
        return lambda series: (_nullable(convert) if optional else convert)(series.to_physical().to_list())
    if convert is _as_they_are:  # strings, numbers, booleans and decimals are as fastavro makes them
        return lambda series: series.to_list()
    return lambda series: (_nullable(convert) if optional else convert)(series.to_list())


def _values(hint: Any, node: nodes.Node) -> Callable[[list[Any]], list[Any]]:
    """How a list of a column's non-null values (timestamps as their microseconds) becomes the class's values."""
    if isinstance(node, nodes.Enum):
        members: dict[str, StrEnum] = {member.value: member for member in hint}
        return lambda values: list(map(members.__getitem__, values))
    if isinstance(node, nodes.Map):
        inner = _nullable(_values(typing.get_args(hint)[1], node.values))
        return lambda values: [dict(zip(*_entries(entries, inner), strict=True)) for entries in values]
    if isinstance(node, nodes.Leaf) and node.kind == "uuid":
        return lambda values: list(map(UUID, values))
    if isinstance(node, nodes.Leaf) and node.kind == "timestamp":
        # fastavro's own arithmetic: the epoch in timezone.utc plus a timedelta, all in C here.
        return lambda values: list(map(_EPOCH.__add__, map(timedelta, repeat(0), repeat(0), values)))
    return _as_they_are


def _as_they_are(values: list[Any]) -> list[Any]:
    return values


def _entries(entries: list[dict[str, Any]], convert: Callable[[list[Any]], list[Any]]) -> tuple[list[Any], list[Any]]:
    return [e["key"] for e in entries], convert([e["value"] for e in entries])


def _nullable(convert: Callable[[list[Any]], list[Any]]) -> Callable[[list[Any]], list[Any]]:
    """``convert`` for a column with nulls: applied to the values there are, None kept where none is."""

    def run(values: list[Any]) -> list[Any]:
        if None not in values:
            return convert(values)
        found = iter(convert([value for value in values if value is not None]))
        return [None if value is None else next(found) for value in values]

    return run


def _optional_of(hint: Any) -> Any:
    args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    return args[0] if len(args) == 1 else hint
