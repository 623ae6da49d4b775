"""GET /v1/accounts/{id}/state?as_of=: through the whole pipeline (API → risk → execution → positions workers on the
real stack), the state as of each moment equals what the processors' events said up to that moment, read
independently; and the route's authorization and errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from tests.support.api_server import ApiServer, api_server
from tests.support.independent import IndependentReader
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration

QUOTES = market_file(BINANCE_QUOTES)
ACCOUNT = "ACC-A7"
HISTORY_RATE = 20  # state queries per user per minute in this module
CLOSING = {"OrderRejected", "OrderCancelled", "OrderExpired"}


@pytest.fixture(scope="module")
def loop(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    prefix = f"asof-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("asof")
    with api_server(
        endpoints,
        workdir,
        prefix,
        TRADECORE_RATE_LIMIT="1000/second",
        TRADECORE_ORDER_WAIT_TIMEOUT_S="20",
        TRADECORE_HISTORY_RATE_LIMIT=f"{HISTORY_RATE}/minute",
    ) as api:
        names = ["risk", "execution", "executions-by-account", "positions"]
        worker = start_worker(endpoints, prefix, names, workdir / "worker.log")
        try:
            yield api
        finally:
            worker.terminate()
            worker.wait(60)


def observed(reader: IndependentReader, api: ApiServer) -> list[dict[str, Any]]:
    """Every event of the account on the four topics, decoded independently of tradecore's code."""
    found = []
    for topic in ("orders", "orders.checked", "executions", "positions"):
        found += [e for e in reader.topic(api.topic_prefix + topic) if e.get("account_id") == ACCOUNT]
    return found


def wait_for(reader: IndependentReader, api: ApiServer, ok: Callable[[list[dict[str, Any]]], bool]) -> None:
    deadline = time.monotonic() + 120
    while not ok(observed(reader, api)):
        assert time.monotonic() < deadline, "the processors did not answer in time"
        time.sleep(0.5)


def expected_as_of(events: list[dict[str, Any]], at: datetime) -> tuple[dict[str, tuple], dict[str, Decimal]]:
    """From the events observed up to ``at``: each instrument's last PositionChanged, and the open orders' leaves."""
    upto = sorted((e for e in events if e["envelope"]["occurred_at"] <= at), key=lambda e: e["envelope"]["sequence"])
    positions = {
        e["instrument"]: (e["quantity"], e["average_price"], e["realized_pnl"], e["fees_paid"])
        for e in upto
        if e["envelope"]["event_type"] == "PositionChanged"
    }
    leaves: dict[str, Decimal] = {}
    closed: set[str] = set()
    for e in sorted(upto, key=lambda e: e["envelope"]["occurred_at"]):
        kind = e["envelope"]["event_type"]
        if kind == "OrderPlaced":
            leaves.setdefault(e["order_id"], e["quantity"])
        elif kind == "OrderFilled":
            leaves[e["order_id"]] = e["leaves_quantity"]
            if e["is_final"]:
                closed.add(e["order_id"])
        elif kind in CLOSING:
            closed.add(e["order_id"])
    return positions, {o: q for o, q in leaves.items() if o not in closed}


def state(api: ApiServer, at: datetime, user: str = "alice") -> dict[str, Any]:
    with api.client(user) as client:
        answer = client.get(f"/v1/accounts/{ACCOUNT}/state", params={"as_of": at.isoformat()})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_state_as_of_each_moment_equals_the_events_observed_up_to_it(loop: ApiServer) -> None:
    quote = pl.read_parquet(QUOTES).row(0, named=True)
    bid, ask = Decimal(str(quote["bid"])), Decimal(str(quote["ask"]))
    reader = IndependentReader(loop.endpoints.kafka_bootstrap, loop.endpoints.schema_registry_url)

    def tick() -> None:
        body = {"instrument": "BTCUSDT", "bid": str(bid), "ask": str(ask), "bid_size": "2", "ask_size": "2"}
        with loop.client("adam") as admin:
            sent = admin.post("/v1/ticks", json={"source": "asof", "ticks": [{**body, "exchange_ts": _now()}]})
        assert sent.status_code == 202, sent.text
        time.sleep(0.5)  # the reference price is in the log before the order

    def place(side: str, quantity: str, price: Decimal) -> dict[str, Any]:
        order = {
            "account_id": ACCOUNT,
            "client_order_id": f"asof-{uuid.uuid4().hex[:8]}",
            "instrument": "BTCUSDT",
            "side": side,
            "order_type": "LIMIT",
            "time_in_force": "GTC",
            "quantity": quantity,
            "limit_price": str(price),
        }
        with loop.client("alice") as alice:
            answer = alice.post("/v1/orders", params={"wait": "ACCEPTED"}, json=order)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def count(kind: str) -> Callable[[list[dict[str, Any]]], int]:
        return lambda events: sum(e["envelope"]["event_type"] == kind for e in events)

    moments = [datetime.now(UTC)]  # before anything
    tick()
    taker = place("BUY", "0.5", ask + 10)
    wait_for(reader, loop, lambda events: count("PositionChanged")(events) == 1)
    moments.append(datetime.now(UTC))
    tick()
    resting = place("BUY", "0.3", bid - 100)
    collared = place("BUY", "0.3", (ask * 2).quantize(Decimal("0.01")))
    assert (resting["status"], collared["status"]) == ("ACCEPTED", "REJECTED")
    moments.append(datetime.now(UTC))
    tick()
    place("SELL", "0.2", bid - 10)
    wait_for(reader, loop, lambda events: count("PositionChanged")(events) == 2)
    moments.append(datetime.now(UTC))
    with loop.client("alice") as alice:
        assert alice.delete(f"/v1/orders/{resting['order_id']}").status_code == 202
    wait_for(reader, loop, lambda events: count("OrderCancelled")(events) == 1)
    moments.append(datetime.now(UTC))

    events = observed(reader, loop)
    reader.close()
    answers = [state(loop, at) for at in moments]
    for at, answer in zip(moments, answers, strict=True):
        positions, open_leaves = expected_as_of(events, at)
        got_positions = {
            p["instrument"]: tuple(Decimal(p[k]) for k in ("quantity", "average_price", "realized_pnl", "fees_paid"))
            for p in answer["positions"]
        }
        assert got_positions == positions, at
        assert {o["order_id"]: Decimal(o["leaves"]) for o in answer["open_orders"]} == open_leaves, at

    # And the moments differ as the session went: nothing; bought 0.5; a resting order; sold 0.2; cancelled.
    assert answers[0]["positions"] == [] and answers[0]["open_orders"] == []
    assert Decimal(answers[1]["positions"][0]["quantity"]) == Decimal("0.5")
    assert [o["order_id"] for o in answers[2]["open_orders"]] == [resting["order_id"]]
    assert answers[2]["open_orders"][0]["status"] == "ACCEPTED"
    sold = answers[3]["positions"][0]
    assert Decimal(sold["quantity"]) == Decimal("0.3")
    assert Decimal(sold["realized_pnl"]) == (bid - ask) * Decimal("0.2")
    assert answers[4]["open_orders"] == [] and answers[4]["positions"] == answers[3]["positions"]
    assert taker["order_id"] not in {o["order_id"] for o in answers[1]["open_orders"]}
    # A viewer reads it too, and gets the same.
    assert state(loop, moments[3], "vera")["positions"] == answers[3]["positions"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@pytest.mark.parametrize(
    ("user", "as_of", "status", "says"),
    [
        ("bob", None, 403, "may not read account"),
        (None, None, 401, "access token"),
        ("alice", "yesterday", 422, "as_of"),
        ("alice", "2021-01-08T10:00:00", 422, "has no zone"),
        ("alice", "future", 422, "is in the future"),
    ],
)
def test_who_may_ask_and_bad_times_are_refused_with_a_problem(
    loop: ApiServer, user: str | None, as_of: str | None, status: int, says: str
) -> None:
    if as_of == "future":
        as_of = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with loop.client(user) as client:
        answer = client.get(f"/v1/accounts/{ACCOUNT}/state", params={"as_of": as_of} if as_of else {})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]


def test_state_queries_are_rate_limited_per_user(loop: ApiServer) -> None:
    with loop.client("rita") as risk_officer:
        answers = [risk_officer.get(f"/v1/accounts/{ACCOUNT}/state") for _ in range(HISTORY_RATE + 1)]
    assert [a.status_code for a in answers] == [200] * HISTORY_RATE + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert answers[-1].headers["content-type"] == "application/problem+json"
