"""Every validation rule answers 422 with a problem+json body that names the field and the rule, and appends
nothing; no malformed input gets a 5xx."""

from __future__ import annotations

import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

PLACE_RULES = [
    # (what is wrong, body overrides, field, rule)
    ("unknown instrument", {"instrument": "DOGEUSD"}, "instrument", "instrument.known"),
    (
        "instrument not tradable",
        {"instrument": "HALTED", "quantity": "1", "limit_price": "1.00"},
        "instrument",
        "instrument.tradable",
    ),
    ("quantity off the lot size", {"quantity": "0.0000001"}, "quantity", "quantity.lot_size"),
    (
        "quantity below the minimum",
        {"instrument": "XBTUSD", "quantity": "0", "limit_price": "8531.5"},
        "quantity",
        "greater_than",
    ),
    ("quantity above the maximum", {"quantity": "9000.5"}, "quantity", "quantity.max"),
    ("quantity not positive", {"quantity": "-1"}, "quantity", "greater_than"),
    ("quantity not a number", {"quantity": "lots"}, "quantity", "decimal_parsing"),
    ("price off the tick size", {"limit_price": "39420.505"}, "limit_price", "price.tick_size"),
    ("limit order without a price", {"limit_price": None}, "limit_price", "limit_price.required"),
    (
        "market order with a price",
        {"order_type": "MARKET", "time_in_force": "IOC"},
        "limit_price",
        "limit_price.forbidden",
    ),
    ("market order resting", {"order_type": "MARKET", "limit_price": None}, "time_in_force", "time_in_force.market"),
    ("unknown side", {"side": "SIDEWAYS"}, "side", "enum"),
    ("unknown time in force", {"time_in_force": "GTD"}, "time_in_force", "enum"),
    ("missing client order id", {"client_order_id": None}, "client_order_id", "missing"),
    ("server-owned status", {"status": "FILLED"}, "status", "extra_forbidden"),
    ("server-owned order id", {"order_id": "mine"}, "order_id", "extra_forbidden"),
    ("infinite price", {"limit_price": "Infinity"}, "limit_price", "decimal_parsing"),
]


@pytest.mark.parametrize(("wrong", "overrides", "field", "rule"), PLACE_RULES, ids=[r[0] for r in PLACE_RULES])
def test_each_order_rule_names_its_field(api: ApiServer, wrong: str, overrides: dict, field: str, rule: str) -> None:
    with api.client("alice") as http:
        answer = http.post("/v1/orders", json=order("ACC-A1", **overrides))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert {"field": field, "rule": rule} in [{"field": e["field"], "rule": e["rule"]} for e in problem["errors"]]
    assert field in problem["detail"]


def test_quantity_below_the_instrument_minimum(api: ApiServer) -> None:
    body = order("ACC-A1", instrument="BTC-PERP", quantity="0.00005", limit_price="46000")
    with api.client("alice") as http:
        problem = http.post("/v1/orders", json=body).json()
    rules = {e["rule"] for e in problem["errors"]}
    assert "quantity.min" in rules


def test_all_broken_rules_are_reported_at_once(api: ApiServer) -> None:
    body = order("ACC-A1", quantity="0.0000001", limit_price="39420.505")
    with api.client("alice") as http:
        problem = http.post("/v1/orders", json=body).json()
    assert {e["rule"] for e in problem["errors"]} >= {"quantity.lot_size", "price.tick_size"}


def test_amend_rules(api: ApiServer) -> None:
    with api.client("alice") as http:
        market = http.post(
            "/v1/orders", json=order("ACC-A1", order_type="MARKET", time_in_force="IOC", limit_price=None)
        )
        limit = http.post("/v1/orders", json=order("ACC-A1"))
        on_market = http.patch(f"/v1/orders/{market.json()['order_id']}", json={"new_limit_price": "39000.00"})
        off_lot = http.patch(f"/v1/orders/{limit.json()['order_id']}", json={"new_quantity": "0.0000001"})
        nothing = http.patch(f"/v1/orders/{limit.json()['order_id']}", json={})
        unknown = http.patch("/v1/orders/no-such-order", json={"new_quantity": "1"})
    assert [e["rule"] for e in on_market.json()["errors"]] == ["limit_price.forbidden"]
    assert {(e["field"], e["rule"]) for e in off_lot.json()["errors"]} == {
        ("new_quantity", "quantity.lot_size"),
        ("new_quantity", "quantity.min"),
    }
    assert nothing.status_code == 422 and "new_quantity" in nothing.json()["detail"]
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"


TICK_RULES = [
    ("no price at all", {"bid": None, "ask": None}, "ticks[0]", "tick.empty"),
    ("crossed quote", {"bid": "1.2", "ask": "1.1"}, "ticks[0].bid", "tick.crossed"),
    ("no timezone", {"exchange_ts": "2020-01-01T17:00:00"}, "ticks[0].exchange_ts", "tick.timezone"),
    ("price off the tick size", {"bid": "1.121205"}, "ticks[0].bid", "price.tick_size"),
    ("unknown instrument", {"instrument": "XAUUSD"}, "ticks[0].instrument", "instrument.known"),
    ("negative size", {"bid_size": "-1"}, "ticks[0].bid_size", "greater_than_equal"),
    ("not a timestamp", {"exchange_ts": "yesterday"}, "ticks[0].exchange_ts", "datetime_from_date_parsing"),
]


@pytest.mark.parametrize(("wrong", "overrides", "field", "rule"), TICK_RULES, ids=[r[0] for r in TICK_RULES])
def test_each_tick_rule_names_its_field(api: ApiServer, wrong: str, overrides: dict, field: str, rule: str) -> None:
    tick = {"instrument": "EURUSD", "bid": "1.12120", "ask": "1.12172", "exchange_ts": "2020-01-01T17:00:00Z"}
    tick.update(overrides)
    with api.client("adam") as http:
        answer = http.post("/v1/ticks", json={"ticks": [{k: v for k, v in tick.items() if v is not None}]})
    assert answer.status_code == 422, answer.text
    assert {"field": field, "rule": rule} in [{"field": e["field"], "rule": e["rule"]} for e in answer.json()["errors"]]


def test_an_empty_batch_is_refused(api: ApiServer) -> None:
    with api.client("adam") as http:
        answer = http.post("/v1/ticks", json={"ticks": []})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "ticks"


MALFORMED = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"order"',
    b"{}",
    b'{"account_id": 1}',
    b'{"account_id": "ACC-A1", "quantity": {"$gt": 0}}',
    b'{"account_id": "' + b"A" * 10_000 + b'"}',
    '{"instrument": "BTC\u0000USDT"}'.encode(),
    b"\xff\xfe\x00garbage",
    b'{"quantity": 1e309}',
    b'{"quantity": "NaN", "limit_price": "-0"}',
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_bodies_get_a_4xx_problem_never_a_5xx(api: ApiServer, raw: bytes) -> None:
    with api.client("alice") as http:
        for path, method in (("/v1/orders", "POST"), ("/v1/orders/x", "PATCH"), ("/v1/ticks", "POST")):
            answer = http.request(method, path, content=raw, headers={"content-type": "application/json"})
            assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/risk/rejections?reason_code=PRICE%00COLLAR", "reason_code"),
        ("/v1/orders?instrument=BTC%00USDT", "instrument"),
        ("/v1/candles?instrument=BTC%0AUSDT&timeframe=1m", "instrument"),
    ],
)
def test_a_control_character_in_a_query_is_422_naming_it_not_500(api: ApiServer, path: str, field: str) -> None:
    # Found by the OpenAPI fuzz: Postgres text cannot hold NUL, and the query reached it.
    with api.client("vera") as http:
        answer = http.get(path)
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == [field]
