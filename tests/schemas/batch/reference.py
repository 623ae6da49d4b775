"""fastavro, record by record, as the reference the batch codec is held to; and records as polars rows."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import fastavro
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avsc
from schemas.batch import nodes
from schemas.events import EVENT_TYPES
from tests.support.properties import example_count

# One schema id per event, as a registry would hand out; any ids do.
SCHEMA_IDS = {name: 100 + i for i, name in enumerate(EVENT_TYPES)}
_MIN_TIME = datetime(1, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def of_every_event_type(test: Callable[[str, Any], None]) -> Callable[..., None]:
    """A property test run once per event type (``name``), drawing that type's records from ``data``."""
    drawn = given(data=st.data())(test)
    tuned = settings(
        max_examples=example_count(25),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )(drawn)
    marked: Callable[..., None] = pytest.mark.parametrize("name", sorted(EVENT_TYPES))(tuned)
    return marked


def writers(extra: Mapping[int, str] | None = None) -> Any:
    """The writer-schema lookup of a registry holding every current schema under ``SCHEMA_IDS`` (and ``extra``)."""
    known = {SCHEMA_IDS[name]: avsc.schema_str(name) for name in EVENT_TYPES}
    known.update(extra or {})
    return known.get


def framed(schema: Mapping[str, Any], record: Mapping[str, Any], schema_id: int) -> bytes:
    """What ``EventSerializer`` writes: the Confluent header, then fastavro's body."""
    out = io.BytesIO()
    out.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(out, fastavro.parse_schema(dict(schema)), dict(record))
    return out.getvalue()


def read(writer: Mapping[str, Any], reader: Mapping[str, Any], value: bytes) -> dict[str, Any]:
    """fastavro's reading of a framed value, the writer's schema resolved against the reader's."""
    parsed_writer, parsed_reader = fastavro.parse_schema(dict(writer)), fastavro.parse_schema(dict(reader))
    found: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed_writer, parsed_reader)  # type: ignore[assignment]
    return found


def row(node: nodes.Node, value: Any) -> Any:
    """A fastavro value as the batch codec's column holds it: uuids as text, maps as key/value lists."""
    if value is None:
        return None
    if isinstance(node, nodes.Optional):
        return row(node.value, value)
    if isinstance(node, nodes.Record):
        return {field.name: row(field.node, value[field.name]) for field in node.fields}
    if isinstance(node, nodes.Map):
        return [{"key": key, "value": row(node.values, item)} for key, item in value.items()]
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(node, nodes.Enum):
        return str(value)
    return value


def frame(node: nodes.Record, records: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """The columns of ``records`` (fastavro values of ``node``), as the batch encoder takes them."""
    schema = {field.name: nodes.dtype(field.node) for field in node.fields}
    return pl.DataFrame([row(node, record) for record in records], schema=schema, orient="row")


def values(node: nodes.Node) -> st.SearchStrategy[Any]:
    """Any fastavro value of ``node``, leaning to the edges: zero, extreme and full-precision decimals, null in every
    optional field, empty, unicode and long strings, the first and last representable times, extreme longs."""
    if isinstance(node, nodes.Optional):
        return st.none() | values(node.value)
    if isinstance(node, nodes.Record):
        return st.fixed_dictionaries({field.name: values(field.node) for field in node.fields})
    if isinstance(node, nodes.Map):
        return st.dictionaries(_text, values(node.values), max_size=4)
    if isinstance(node, nodes.Enum):
        return st.sampled_from(node.symbols)
    if isinstance(node, nodes.Decimal):
        top = 10**node.precision - 1
        unscaled = st.sampled_from([0, 1, -1, top, -top, 10**node.scale]) | st.integers(-top, top)
        return unscaled.map(lambda n: Decimal(n).scaleb(-node.scale))
    return _LEAVES[node.kind]


_text = st.text(max_size=12) | st.text(min_size=200, max_size=600) | st.sampled_from(["", "BTCUSDT", "ü€𝄞 ☃"])
_LEAVES: dict[str, st.SearchStrategy[Any]] = {
    "string": _text,
    "uuid": st.uuids(),
    "long": st.sampled_from([0, -1, 2**63 - 1, -(2**63), 63, 64, -65]) | st.integers(-(2**63), 2**63 - 1),
    "int": st.sampled_from([0, 2**31 - 1, -(2**31)]) | st.integers(-(2**31), 2**31 - 1),
    "boolean": st.booleans(),
    "double": st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0, 1e308, -1e-308]),
    "timestamp": st.sampled_from([_MIN_TIME, _MAX_TIME, datetime(1970, 1, 1, tzinfo=UTC)])
    | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.astimezone(UTC)),
}


def events(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """fastavro records of event ``name`` whose envelope names the event and its current schema version."""
    node = nodes.parse(avsc.expanded(name))
    version = EVENT_TYPES[name].schema_version()

    def stamped(record: dict[str, Any]) -> dict[str, Any]:
        record["envelope"] = {**record["envelope"], "event_type": name, "schema_version": version}
        return record

    return values(node).map(stamped)
