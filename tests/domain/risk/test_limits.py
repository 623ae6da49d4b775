"""``RiskLimits`` is defined once: the event's Avro schema (the wire contract, written by hand) is held to it, and the
command body, the processors' default settings and the read model's columns are made from it, so none can drift."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, Numeric

from commands.models import SetRiskLimits
from domain.risk.errors import RiskLimitsError
from domain.risk.limits import LIMITS, Kind, RiskLimits
from projections.tables import risk_limits
from schemas.events import RiskLimitsSet
from streams.processors import ProcessorSettings

AVRO = {
    Kind.QUANTITY: {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 8},
    Kind.MONEY: {"type": "bytes", "logicalType": "decimal", "precision": 28, "scale": 8},
    Kind.COUNT: "int",
    Kind.MILLIS: "long",
}


def test_the_events_avro_fields_are_the_limits_in_order_with_their_kinds() -> None:
    fields = [f for f in RiskLimitsSet.schema()["fields"] if f["name"] not in ("envelope", "account_id", "set_by")]
    assert [f["name"] for f in fields] == list(LIMITS)
    assert [f["type"] for f in fields] == [AVRO[limit.kind] for limit in LIMITS.values()]


def test_the_command_body_has_every_limit_with_the_bounds_it_always_had() -> None:
    # The body's JSON schema as the API published it before the limits were defined once (descriptions aside).
    expected: dict[str, dict[str, Any]] = {
        "max_order_quantity": {"anyOf": [{"exclusiveMinimum": 0.0, "type": "number"}, {"type": "string"}]},
        "max_order_notional": {"anyOf": [{"minimum": 0.0, "type": "number"}, {"type": "string"}]},
        "max_position_quantity": {"anyOf": [{"exclusiveMinimum": 0.0, "type": "number"}, {"type": "string"}]},
        "max_open_notional": {"anyOf": [{"minimum": 0.0, "type": "number"}, {"type": "string"}]},
        "daily_loss_limit": {"anyOf": [{"minimum": 0.0, "type": "number"}, {"type": "string"}]},
        "max_orders_per_second": {"exclusiveMinimum": 0, "maximum": 100000, "type": "integer"},
        "price_collar_bps": {"exclusiveMinimum": 0, "maximum": 10000, "type": "integer"},
        "reference_max_age_ms": {"exclusiveMinimum": 0, "type": "integer"},
    }
    schema = SetRiskLimits.model_json_schema()
    assert (schema["title"], schema["additionalProperties"], schema["required"]) == (
        "SetRiskLimits",
        False,
        list(LIMITS),
    )
    found = {
        name: {k: v for k, v in field.items() if k not in ("title", "description")}
        for name, field in schema["properties"].items()
    }
    assert found == expected
    assert all(schema["properties"][name]["description"] == limit.doc for name, limit in LIMITS.items())


def test_the_command_refuses_what_the_limits_refuse() -> None:
    body = {name: str(limit.default) for name, limit in LIMITS.items()}
    assert SetRiskLimits.model_validate(body).model_dump() == {
        n: type(lim.default)(lim.default) for n, lim in LIMITS.items()
    }
    for name, bad in (("max_order_quantity", "0"), ("daily_loss_limit", "-1"), ("price_collar_bps", "10001")):
        with pytest.raises(ValueError, match=name):
            SetRiskLimits.model_validate({**body, name: bad})
    with pytest.raises(ValueError, match="extra"):
        SetRiskLimits.model_validate({**body, "max_leverage": "3"})


def test_the_domain_refuses_out_of_range_limits_by_their_kind() -> None:
    good = {name: limit.default for name, limit in LIMITS.items()}
    assert RiskLimits(**{**good, "max_order_notional": Decimal(0)}).max_order_notional == 0  # money may be zero
    with pytest.raises(RiskLimitsError) as caught:
        RiskLimits(**{**good, "max_order_quantity": Decimal(0), "daily_loss_limit": Decimal(-1), "price_collar_bps": 0})
    assert str(caught.value).splitlines()[0] == (
        "max_order_quantity must be positive, got 0; daily_loss_limit must be zero or positive, got -1; "
        "price_collar_bps must be positive, got 0"
    )


def test_the_processors_default_settings_are_one_per_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADECORE_RISK_PRICE_COLLAR_BPS", "250")
    monkeypatch.setenv("TRADECORE_RISK_MAX_ORDER_QUANTITY", "7.5")
    limits = ProcessorSettings().default_limits()
    expected = {name: limit.default for name, limit in LIMITS.items()}
    assert limits == RiskLimits(**{**expected, "price_collar_bps": 250, "max_order_quantity": Decimal("7.5")})


def test_the_read_model_has_a_column_per_limit_typed_by_its_kind() -> None:
    columns = [c for c in risk_limits.columns if c.name in LIMITS]
    assert [c.name for c in columns] == list(LIMITS)
    kinds = {Kind.QUANTITY: Numeric, Kind.MONEY: Numeric, Kind.COUNT: Integer, Kind.MILLIS: BigInteger}
    for column in columns:
        assert type(column.type) is kinds[LIMITS[column.name].kind], column.name
