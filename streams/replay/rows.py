"""Records as flat rows: where the record is, the envelope, then the payload fields of every event of the topic.

Columns are fixed per topic (the union of its events' fields, in the order the events declare them), so every batch
of a replay has the same schema and a field an event does not have is null. Prices, quantities and money stay
exact: ``Decimal`` values in a ``Decimal(38, 8)`` column, never floats.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

import polars as pl

from schemas.contract_errors import UnknownEventError
from schemas.events import Envelope, events_on
from streams.host.decoding import EVENTS_OF
from streams.replay.errors import ReplayError

if TYPE_CHECKING:  # the reader makes frames with this module's columns
    from streams.replay.reader import Record

DECIMAL = pl.Decimal(38, 8)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RECORD_COLUMNS: dict[str, pl.DataType] = {
    "topic": pl.String(),
    "partition": pl.Int32(),
    "offset": pl.Int64(),
    "timestamp": pl.Datetime("ms", "UTC"),
    "key": pl.String(),
}
TRAILING_COLUMNS: dict[str, pl.DataType] = {
    "error": pl.String(),  # why the record did not decode; then the event's columns are null
    "raw_value": pl.String(),  # the undecodable value, base64, so that nothing is lost
}


def _dtype(hint: Any, where: str) -> pl.DataType:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = args[0]
    if typing.get_origin(hint) is not None and issubclass(typing.get_origin(hint), Mapping):
        return pl.String()  # a map of values (signals' indicators), as JSON
    if isinstance(hint, type):
        if issubclass(hint, Decimal):
            return DECIMAL
        if issubclass(hint, datetime):
            return pl.Datetime("us", "UTC")
        if issubclass(hint, bool):
            return pl.Boolean()
        if issubclass(hint, int):
            return pl.Int64()
        if issubclass(hint, float):
            return pl.Float64()
        if issubclass(hint, str | UUID | Enum):
            return pl.String()
    raise ReplayError(f"{where} has a type replay cannot put in a column: {hint!r}")


def _fields(cls: type) -> list[tuple[str, pl.DataType]]:
    hints = typing.get_type_hints(cls)
    return [
        (f.name, _dtype(hints[f.name], f"{cls.__name__}.{f.name}"))
        for f in dataclasses.fields(cls)
        if f.name != "envelope"
    ]


def columns(topic: str) -> dict[str, pl.DataType]:
    """The columns of a replay of ``topic`` (name before any namespace), in order, with their types."""
    found = {**RECORD_COLUMNS, **dict(_fields(Envelope))}
    try:
        classes = events_on(EVENTS_OF.get(topic, topic))
    except UnknownEventError as err:
        raise ReplayError(f"{topic} holds no events to replay: {err}") from err
    for cls in classes:
        for name, dtype in _fields(cls):
            if found.setdefault(name, dtype) != dtype:
                raise ReplayError(f"{name} is a {found[name]} in one event of {topic} and a {dtype} in another")
    return {**found, **TRAILING_COLUMNS}


def row(record: Record) -> dict[str, Any]:
    """A record as a row: its place, the envelope's fields and the event's, or the error and the raw value."""
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": _EPOCH + timedelta(milliseconds=record.timestamp),
        "key": record.key,
    }
    if record.event is None:
        out["error"] = record.error
        out["raw_value"] = None if record.value is None else base64.b64encode(record.value).decode()
        return out
    envelope = record.event.envelope
    out.update({name: _value(getattr(envelope, name)) for name in _names(Envelope)})
    out.update({name: _value(getattr(record.event, name)) for name in _names(type(record.event))})
    return out


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names but the envelope (its fields are columns of their own)."""
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls) if f.name != "envelope")
    return names


def _value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(sorted(value.items())))
    return value


class RowFilter:
    """``field=value`` conditions: a row passes when every field named matches one of the values given for it.

    Values compare as text, except decimal columns, which compare as numbers (``0.5`` matches ``0.50000000``).
    """

    def __init__(self, conditions: Iterable[str], known: Mapping[str, pl.DataType]) -> None:
        self._wanted: dict[str, set[Any]] = {}
        self._known = known
        for condition in conditions:
            name, sep, value = condition.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ReplayError(f"filter {condition!r} is not field=value", hint="e.g. --filter order_id=ord-1")
            if name not in known:
                raise ReplayError(f"no field {name!r} to filter on", hint=f"fields: {', '.join(known)}")
            self._wanted.setdefault(name, set()).add(_parse(value, known[name], name))

    def __bool__(self) -> bool:
        return bool(self._wanted)

    def __call__(self, row: Mapping[str, Any]) -> bool:
        return all(_text(row.get(name)) in values for name, values in self._wanted.items())

    def expression(self) -> pl.Expr:
        """The filter over a frame's columns (true for every row when there are no conditions)."""
        found = pl.lit(True)
        for name, values in self._wanted.items():
            found = found & _text_of(name, self._known[name]).is_in(sorted(values)).fill_null(False)
        return found


def _parse(value: str, dtype: pl.DataType, name: str) -> Any:
    if dtype == DECIMAL:
        try:
            return _text(Decimal(value))
        except InvalidOperation:
            raise ReplayError(f"filter {name}={value!r}: {name} is a decimal, and that is not one") from None
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _text_of(name: str, dtype: pl.DataType) -> pl.Expr:
    """``_text`` of a column's values, as an expression."""
    column = pl.col(name)
    if dtype == DECIMAL:  # Decimal.normalize() in 'f' form: no trailing zeros, no bare point
        return column.cast(pl.String).str.strip_chars_end("0").str.strip_chars_end(".")
    if isinstance(dtype, pl.Datetime):  # datetime.isoformat(): fractions only when there are any
        whole = column.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        return (
            pl.when(column.dt.microsecond() == 0)
            .then(whole)
            .otherwise(column.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
        )
    if dtype == pl.Boolean():
        return pl.when(column).then(pl.lit("True")).otherwise(pl.lit("False"))
    return column.cast(pl.String)


def frame(rows: Sequence[Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Rows as a DataFrame with the topic's fixed schema."""
    return pl.DataFrame([{name: r.get(name) for name in schema} for r in rows], schema=dict(schema), orient="row")


def json_line(row: Mapping[str, Any]) -> str:
    """A row as one line of JSON: decimals as exact strings, times in ISO 8601."""
    return json.dumps(dict(row), default=_json_default, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
