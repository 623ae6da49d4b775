"""The event classes and their ``.avsc`` files say the same thing, and the files follow the contract's rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

import pytest

from schemas import avsc, codec
from schemas.contract_errors import SchemaDriftError, UnknownEventError
from schemas.events import EVENT_TYPES, ROUTES, Envelope, Event, OrderPlaced, Side, event_type, events_on
from streams.kafka.topics import TOPICS

MONEY = {
    ("RiskLimitsSet", "max_order_notional"),
    ("RiskLimitsSet", "max_open_notional"),
    ("RiskLimitsSet", "daily_loss_limit"),
    ("OrderFilled", "fee"),
    ("PositionChanged", "realized_pnl"),
    ("PositionChanged", "fees_paid"),
}
# Scores, not money: the only floating-point fields allowed.
FLOATS = {("SignalGenerated", "strength"), ("SignalGenerated", "values")}


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_every_class_matches_its_avsc_field_by_field(name: str) -> None:
    cls = EVENT_TYPES[name]
    assert cls.avsc_path().is_file()
    assert codec.mismatches(cls, cls.schema()) == []
    codec.prepare(cls)


def test_the_envelope_class_matches_its_avsc() -> None:
    assert codec.mismatches(Envelope, avsc.expanded("Envelope")) == []


# --- the drift check catches each way a class can drift ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlacedMissingAField(Event):
    order_id: str
    account_id: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: str
    time_in_force: str
    quantity: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderPlacedRetyped(Event):
    order_id: str
    account_id: str
    client_order_id: str
    instrument: str
    side: Side
    order_type: str
    time_in_force: str
    quantity: float
    limit_price: Decimal


class Side3(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    SHORT = "SHORT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Side3Holder:
    side: Side3


def test_a_missing_field_is_named() -> None:
    problems = codec.mismatches(OrderPlacedMissingAField, OrderPlaced.schema())
    assert any("missing ['limit_price']" in p for p in problems), problems


def test_a_retyped_field_an_enum_typed_as_str_and_a_lost_optional_are_each_named() -> None:
    problems = "\n".join(codec.mismatches(OrderPlacedRetyped, OrderPlaced.schema()))
    assert "OrderPlacedRetyped.quantity: the class says float" in problems
    assert "OrderPlacedRetyped.order_type: the class says str, the schema enum tradecore.events.OrderType" in problems
    assert "OrderPlacedRetyped.limit_price: optional in the schema" in problems


def test_reordered_fields_and_enum_symbols_are_drift() -> None:
    schema = json.loads(json.dumps(OrderPlaced.schema()))
    schema["fields"][1], schema["fields"][2] = schema["fields"][2], schema["fields"][1]
    assert any("in another order" in p for p in codec.mismatches(OrderPlaced, schema))

    side_schema = {"type": "record", "name": "tradecore.events.Side3Holder", "fields": [schema["fields"][5]]}
    side_schema["fields"][0]["type"]["name"] = "tradecore.events.Side3"
    assert codec.mismatches(Side3Holder, side_schema) == [
        "Side3Holder.side: Side3 has members ['BUY', 'SELL', 'SHORT'], the schema's symbols are ['BUY', 'SELL']"
    ]


class OrderPlacedWhoseFileGainedAField(OrderPlaced):
    @classmethod
    def schema(cls) -> dict[str, Any]:
        schema: dict[str, Any] = json.loads(json.dumps(OrderPlaced.schema()))
        schema["fields"].append({"name": "venue", "type": "string", "doc": "added to the file, not the class"})
        return schema


def test_a_drifted_class_cannot_be_encoded_at_all() -> None:
    with pytest.raises(SchemaDriftError, match=r"fields .* differ from the schema's .* \(missing \['venue'\]"):
        codec.prepare(OrderPlacedWhoseFileGainedAField)


# --- the registry of events ---------------------------------------------------------------------------------------


def test_routes_match_the_topics_of_the_design() -> None:
    key_fields = {"account": "account_id", "instrument": "instrument"}
    for spec in TOPICS:
        if spec.name == "deadletter" or spec.internal:
            continue
        assert {cls.__name__ for cls in events_on(spec.name)} == set(spec.holds.split(", ")), spec.name
        for cls in events_on(spec.name):
            assert cls.route().key == key_fields[spec.key], cls.__name__
    assert set(ROUTES) == set(EVENT_TYPES)


def test_every_event_knows_its_key() -> None:
    from tests.support.events import every_event

    for event in every_event():
        assert event.key == getattr(event, event.route().key)
        assert event.key in ("acc-7", "BTCUSDT")


def test_unknown_names_and_topics_are_refused_with_what_exists() -> None:
    assert event_type("tradecore.events.OrderFilled") is event_type("OrderFilled")
    with pytest.raises(UnknownEventError, match="OrderSubmitted is not a tradecore event"):
        event_type("OrderSubmitted")
    with pytest.raises(UnknownEventError, match="no events are written to topic 'deadletter'") as err:
        events_on("deadletter")
    assert "orders.checked" in str(err.value)


# --- the rules every .avsc follows --------------------------------------------------------------------------------


def _fields(schema: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every field of a record, the envelope's included, as (dotted path, field)."""
    for field in schema["fields"]:
        yield field["name"], field
        for branch in field["type"] if isinstance(field["type"], list) else [field["type"]]:
            if isinstance(branch, dict) and branch.get("type") == "record":
                for path, inner in _fields(branch):
                    yield f"{field['name']}.{path}", inner


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_the_avsc_follows_the_contract_rules(name: str) -> None:
    source = json.loads(avsc.path_of(name).read_text())
    assert source["namespace"] == "tradecore.events"
    assert source["doc"]
    # The envelope is shared by name, never copied into an event's file.
    assert source["fields"][0] == {
        "name": "envelope",
        "type": "tradecore.events.Envelope",
        "doc": source["fields"][0]["doc"],
    }
    for path, field in _fields(EVENT_TYPES[name].schema()):
        assert field.get("doc"), f"{name}.{path} has no doc"
        types = field["type"] if isinstance(field["type"], list) else [field["type"]]
        for branch in types:
            if isinstance(branch, dict) and branch.get("logicalType") == "decimal":
                expected = (28, 8) if (name, path) in MONEY else (18, 8)
                assert (branch["precision"], branch["scale"]) == expected, f"{name}.{path}"
            if isinstance(branch, dict) and branch.get("type") in ("enum", "record"):
                assert branch.get("doc"), f"{name}.{path}: {branch['name']} has no doc"
            floating = branch in ("float", "double") or (isinstance(branch, dict) and branch.get("values") == "double")
            assert not floating or (name, path) in FLOATS, f"{name}.{path} is floating point"


def test_the_envelope_has_the_fields_of_the_design() -> None:
    envelope = {field["name"]: field["type"] for field in avsc.expanded("Envelope")["fields"]}
    assert envelope == {
        "event_id": {"type": "string", "logicalType": "uuid"},
        "event_type": "string",
        "occurred_at": {"type": "long", "logicalType": "timestamp-micros"},
        "recorded_at": {"type": "long", "logicalType": "timestamp-micros"},
        "correlation_id": "string",
        "causation_id": ["null", "string"],
        "aggregate_id": "string",
        "sequence": "long",
        "schema_version": "int",
    }


@pytest.mark.parametrize("name", list(EVENT_TYPES))
def test_the_current_schema_is_the_latest_released_version(name: str) -> None:
    """What main writes must be released, or `make schemas-check` would not guard the next change against it."""
    versions = avsc.released_versions(name)
    latest = max(versions, default=0)
    assert versions, f"{name} is not released: write schemas/released/{name}/v1.avsc (its expanded schema)"
    assert json.loads(versions[latest].read_text()) == avsc.expanded(name), (
        f"{name} changed since v{latest}: release it as schemas/released/{name}/v{latest + 1}.avsc "
        f"(json.dumps(schemas.avsc.expanded({name!r}), indent=2))"
    )
    assert EVENT_TYPES[name].schema_version() == latest
