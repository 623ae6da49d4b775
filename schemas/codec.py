"""Events to and from the dict form fastavro writes and reads: the one place that converts, for every class.

A plan per class is built at first use from the class and its ``.avsc`` together. Building it compares the two
field by field — name, order, type, optionality, default — and raises ``SchemaDriftError`` on any difference, so a
class that drifted from its schema fails on its first event rather than misbehaving on the thousandth.

Writing also checks what fastavro would reject obscurely or get wrong silently: a decimal that does not fit its
``decimal(p, s)`` (fastavro checks neither the integer digits nor NaN), a naive or non-UTC datetime (fastavro would
read a naive one as local time), and an envelope that names another event or another schema version.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from schemas.contract_errors import EventEncodeError, SchemaDriftError
from schemas.events import Event

E = TypeVar("E", bound=Event)
Convert = Callable[[Any], Any]

_PRIMITIVES: Mapping[str, type] = {"string": str, "int": int, "long": int, "boolean": bool, "double": float}
_UTC_OFFSET = timedelta(0)
# Quantizing must not depend on the caller's decimal context; 38 digits hold any decimal(28, 8) with room to spare.
_DECIMALS = Context(prec=38)


def to_avro(event: Event) -> dict[str, Any]:
    """The record fastavro writes for ``event``; raises ``EventEncodeError`` naming the field that does not fit."""
    cls = type(event)
    envelope = event.envelope
    if envelope.event_type != cls.__name__ or envelope.schema_version != cls.schema_version():
        raise EventEncodeError(
            f"{cls.__name__}: the envelope says {envelope.event_type} v{envelope.schema_version}, "
            f"but this is {cls.__name__} v{cls.schema_version()}",
            hint="build envelopes with schemas.events.new_envelope(<event class>, ...)",
        )
    return _plan(cls).encode(event)


def from_avro(cls: type[E], record: Mapping[str, Any]) -> E:
    """The ``cls`` event for a record fastavro read with ``cls``'s schema as the reader schema."""
    event: E = _plan(cls).decode(record)
    return event


def mismatches(cls: type, schema: Mapping[str, Any]) -> list[str]:
    """Every difference between the dataclass ``cls`` and the expanded record ``schema``; empty when they agree."""
    problems: list[str] = []
    _Builder(problems).record(cls, schema, cls.__name__)
    return problems


@dataclasses.dataclass(frozen=True, slots=True)
class _Plan:
    cls: type
    encoders: tuple[tuple[str, Convert | None], ...]
    decoders: tuple[tuple[str, Convert | None], ...]

    def encode(self, obj: Any) -> dict[str, Any]:
        return {
            name: getattr(obj, name) if convert is None else convert(getattr(obj, name))
            for name, convert in self.encoders
        }

    def decode(self, record: Mapping[str, Any]) -> Any:
        return self.cls(
            **{name: record[name] if convert is None else convert(record[name]) for name, convert in self.decoders}
        )


_plans: dict[type, _Plan] = {}


def _plan(cls: type[Event]) -> _Plan:
    plan = _plans.get(cls)
    if plan is None:
        problems: list[str] = []
        plan = _Builder(problems).record(cls, cls.schema(), cls.__name__)
        if problems:
            raise SchemaDriftError(
                f"{cls.__name__} does not match {cls.avsc_path().name}:\n  " + "\n  ".join(problems),
                hint="change the class and the .avsc together (and release the schema if it changed)",
            )
        _plans[cls] = plan
    return plan


class _Builder:
    """Walks a dataclass and its Avro record side by side, collecting converters and differences."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.named: dict[str, Any] = {}  # named Avro types seen so far; later uses refer to them by name

    def record(self, cls: type, schema: Mapping[str, Any], label: str) -> _Plan:
        if not dataclasses.is_dataclass(cls):
            self.problems.append(f"{label}: {cls!r} is not a dataclass, the schema has record {schema.get('name')}")
            return _Plan(cls, (), ())
        ours = [field for field in dataclasses.fields(cls) if field.init]
        theirs: list[Mapping[str, Any]] = list(schema.get("fields", ()))
        our_names = [field.name for field in ours]
        their_names = [field["name"] for field in theirs]
        if our_names != their_names:
            missing = [name for name in their_names if name not in our_names]
            extra = [name for name in our_names if name not in their_names]
            detail = f"missing {missing}, not in the schema {extra}" if missing or extra else "in another order"
            self.problems.append(f"{label}: fields {our_names} differ from the schema's {their_names} ({detail})")
        hints = typing.get_type_hints(cls)
        by_name = {field.name: field for field in ours}
        encoders: list[tuple[str, Convert | None]] = []
        decoders: list[tuple[str, Convert | None]] = []
        for avro_field in theirs:
            name = avro_field["name"]
            field = by_name.get(name)
            if field is None:
                continue
            encode, decode = self.field(field, hints[name], avro_field, f"{label}.{name}")
            encoders.append((name, encode))
            decoders.append((name, decode))
        return _Plan(cls, tuple(encoders), tuple(decoders))

    def field(
        self, field: dataclasses.Field[Any], hint: Any, avro_field: Mapping[str, Any], label: str
    ) -> tuple[Convert | None, Convert | None]:
        avro_type = avro_field["type"]
        inner = _optional_of(hint)
        if isinstance(avro_type, list):
            if len(avro_type) != 2 or avro_type[0] != "null":
                self.problems.append(f"{label}: only ['null', T] unions are supported, not {avro_type}")
                return None, None
            if "default" not in avro_field or avro_field["default"] is not None:
                self.problems.append(f'{label}: an optional field needs "default": null in the schema')
            if inner is None or field.default is not None:
                self.problems.append(f"{label}: optional in the schema, so the class field must be `T | None = None`")
            encode, decode = self.type(inner if inner is not None else hint, avro_type[1], label)
            return _or_none(encode), _or_none(decode)
        if inner is not None:
            self.problems.append(f"{label}: optional in the class ({hint}) but required in the schema")
        if "default" in avro_field or field.default is not dataclasses.MISSING:
            self.problems.append(f"{label}: only optional fields have a default (null), in the schema and the class")
        return self.type(hint, avro_type, label)

    def type(self, hint: Any, avro_type: Any, label: str) -> tuple[Convert | None, Convert | None]:
        if isinstance(avro_type, str) and avro_type in self.named:
            avro_type = self.named[avro_type]
        if isinstance(avro_type, Mapping) and avro_type.get("type") in _PRIMITIVES and "logicalType" not in avro_type:
            avro_type = avro_type["type"]
        if isinstance(avro_type, str):
            expected = _PRIMITIVES.get(avro_type)
            if expected is None:
                self.problems.append(f"{label}: Avro type {avro_type!r} is not supported")
            elif hint is not expected:
                self._mismatch(label, hint, expected.__name__, avro_type)
            return None, None

        kind, logical = avro_type.get("type"), avro_type.get("logicalType")
        if kind == "string" and logical == "uuid":
            if hint is not UUID:
                self._mismatch(label, hint, "UUID", "string/uuid")
            return None, None
        if kind == "bytes" and logical == "decimal":
            precision, scale = avro_type["precision"], avro_type.get("scale", 0)
            if hint is not Decimal:
                self._mismatch(label, hint, "Decimal", f"decimal({precision}, {scale})")
            return _decimal(label, precision, scale), None
        if kind == "long" and logical == "timestamp-micros":
            if hint is not datetime:
                self._mismatch(label, hint, "datetime", "timestamp-micros")
            return _utc(label), None
        if kind == "enum":
            return self.enum(hint, avro_type, label)
        if kind == "record":
            self.named[avro_type["name"]] = avro_type
            name = _short(avro_type["name"])
            if getattr(hint, "__name__", None) != name:
                self._mismatch(label, hint, name, f"record {avro_type['name']}")
                return None, None
            plan = self.record(hint, avro_type, label)
            return plan.encode, plan.decode
        if kind == "map":
            if typing.get_origin(hint) is not Mapping or typing.get_args(hint)[:1] != (str,):
                self._mismatch(label, hint, "Mapping[str, ...]", "map")
                return None, None
            encode, decode = self.type(typing.get_args(hint)[1], avro_type["values"], f"{label}[]")
            if encode is not None or decode is not None:
                self.problems.append(f"{label}: maps of values that need converting are not supported")
            return None, None
        self.problems.append(f"{label}: Avro type {avro_type} is not supported")
        return None, None

    def enum(self, hint: Any, avro_type: Mapping[str, Any], label: str) -> tuple[Convert | None, Convert | None]:
        self.named[avro_type["name"]] = avro_type
        name, symbols = _short(avro_type["name"]), list(avro_type["symbols"])
        if not (isinstance(hint, type) and issubclass(hint, StrEnum) and hint.__name__ == name):
            self._mismatch(label, hint, f"StrEnum {name}", f"enum {avro_type['name']}")
            return None, None
        members = [member.value for member in hint]
        if members != symbols:
            self.problems.append(f"{label}: {name} has members {members}, the schema's symbols are {symbols}")
        # StrEnum members are str, so fastavro writes them as they are; it reads back plain str.
        return None, hint

    def _mismatch(self, label: str, hint: Any, expected: str, avro: str) -> None:
        shown = getattr(hint, "__name__", None) or str(hint)
        self.problems.append(f"{label}: the class says {shown}, the schema {avro} (expects {expected})")


def _optional_of(hint: Any) -> Any:
    """``T`` for a ``T | None`` hint, else ``None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0]
    return None


def _or_none(convert: Convert | None) -> Convert | None:
    if convert is None:
        return None
    return lambda value: None if value is None else convert(value)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _decimal(label: str, precision: int, scale: int) -> Convert:
    quantum = Decimal(1).scaleb(-scale)
    integer_digits = precision - scale
    spec = f"decimal({precision}, {scale})"

    def encode(value: Any) -> Decimal:
        if not isinstance(value, Decimal) or not value.is_finite():
            raise EventEncodeError(f"{label}: {value!r} is not a finite Decimal; the schema says {spec}")
        if value and value.adjusted() >= integer_digits:
            raise EventEncodeError(f"{label}: {value} has more than {integer_digits} integer digits ({spec})")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -scale:
            # Trailing zeros beyond the scale are harmless (1.000000000 is 1.00000000); real digits are not.
            try:
                exact = value.quantize(quantum, context=_DECIMALS)
            except InvalidOperation:
                exact = None
            if exact is None or exact != value:
                raise EventEncodeError(f"{label}: {value} has more than {scale} decimal places ({spec})") from None
            return exact
        return value

    return encode


def _utc(label: str) -> Convert:
    def encode(value: Any) -> datetime:
        if not isinstance(value, datetime) or value.utcoffset() != _UTC_OFFSET:
            raise EventEncodeError(
                f"{label}: {value!r} is not a UTC datetime",
                hint="use datetime(..., tzinfo=UTC); a naive time would be stored as local time",
            )
        return value

    return encode


def prepare(cls: type[Event]) -> None:
    """Build (and so check) ``cls``'s plan now rather than at its first event; raises ``SchemaDriftError``."""
    _plan(cls)
