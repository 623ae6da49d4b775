"""An Avro schema (the expanded JSON the registry holds) as a small tree the batch codec walks column by column.

Only the shapes tradecore's events use are accepted — records, ``["null", T]`` unions, enums, maps, strings,
uuids, longs, ints, booleans, doubles, ``bytes``/``decimal`` and ``long``/``timestamp-micros``; anything else is a
``BatchSchemaError`` when the codec is built, never a surprise on a record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from schemas.batch.errors import BatchSchemaError

# Avro type name -> the kind of a leaf node; logical types refine the kind below.
_LEAVES = {"string": "string", "long": "long", "int": "int", "boolean": "boolean", "double": "double"}


@dataclass(frozen=True)
class Leaf:
    """A value of fixed meaning: string, uuid, long, int, boolean, double or timestamp (micros, UTC)."""

    kind: str


@dataclass(frozen=True)
class Decimal:
    """``bytes`` with logical type decimal: big-endian two's complement of the unscaled value."""

    precision: int
    scale: int


@dataclass(frozen=True)
class Enum:
    name: str
    symbols: tuple[str, ...]
    default: str | None = None


@dataclass(frozen=True)
class Optional:
    """The union ``["null", T]``: branch 0 is null, branch 1 a ``T``."""

    value: Node


@dataclass(frozen=True)
class Map:
    values: Node


@dataclass(frozen=True)
class Field:
    name: str
    node: Node
    has_default: bool
    default: Any


@dataclass(frozen=True)
class Record:
    name: str
    fields: tuple[Field, ...]


Node = Leaf | Decimal | Enum | Optional | Map | Record


def parse(schema: Mapping[str, Any]) -> Record:
    """The tree of an expanded record schema (named types defined at first use, referenced by name after)."""
    node = _Parser().node(schema, namespace="")
    if not isinstance(node, Record):
        raise BatchSchemaError(f"not a record schema: {schema.get('type')!r}")
    return node


class _Parser:
    def __init__(self) -> None:
        self.named: dict[str, Node] = {}

    def node(self, schema: Any, namespace: str) -> Node:
        if isinstance(schema, str):
            if schema in _LEAVES:
                return Leaf(_LEAVES[schema])
            found = self.named.get(schema) or self.named.get(_full(schema, namespace))
            if found is None:
                raise BatchSchemaError(f"Avro type {schema!r} is not supported (or not defined before its use)")
            return found
        if isinstance(schema, list):
            if len(schema) != 2 or schema[0] != "null":
                raise BatchSchemaError(f"only ['null', T] unions are supported, not {schema}")
            return Optional(self.node(schema[1], namespace))
        kind, logical = schema.get("type"), schema.get("logicalType")
        if kind == "string" and logical == "uuid":
            return Leaf("uuid")
        if kind == "long" and logical == "timestamp-micros":
            return Leaf("timestamp")
        if kind == "bytes" and logical == "decimal":
            return Decimal(int(schema["precision"]), int(schema.get("scale", 0)))
        if kind in _LEAVES:
            return Leaf(_LEAVES[kind])
        if kind == "map":
            return Map(self.node(schema["values"], namespace))
        if kind in ("enum", "record"):
            name = _full(schema["name"], schema.get("namespace", namespace))
            inner = name.rpartition(".")[0]
            if kind == "enum":
                node: Node = Enum(name, tuple(schema["symbols"]), schema.get("default"))
                self.named[name] = node
                return node
            fields = tuple(
                Field(f["name"], self.node(f["type"], inner), "default" in f, f.get("default"))
                for f in schema["fields"]
            )
            record = Record(name, fields)
            self.named[name] = record
            return record
        raise BatchSchemaError(f"Avro type {schema!r} is not supported")


def _full(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def dtype(node: Node) -> pl.DataType:
    """The polars type a column of ``node`` values has, decoded or to be encoded."""
    if isinstance(node, Leaf):
        return _LEAF_DTYPES[node.kind]
    if isinstance(node, Decimal):
        return pl.Decimal(node.precision, node.scale)
    if isinstance(node, Enum):
        return pl.Enum(list(node.symbols))
    if isinstance(node, Optional):
        return dtype(node.value)
    if isinstance(node, Map):
        return pl.List(pl.Struct({"key": pl.String(), "value": dtype(node.values)}))
    return pl.Struct({field.name: dtype(field.node) for field in node.fields})


_LEAF_DTYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "uuid": pl.String(),
    "long": pl.Int64(),
    "int": pl.Int32(),
    "boolean": pl.Boolean(),
    "double": pl.Float64(),
    "timestamp": pl.Datetime("us", "UTC"),
}
