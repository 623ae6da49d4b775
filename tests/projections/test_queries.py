"""The query API over the read models, as a client sees it: a real `tradecore api` and `tradecore project` over a
whole pipeline's log; answers carry their checkpoint, `?min_offset=` waits for a client's own write, pages walk
every row once, and traders read only their own accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.api.conftest import order
from tests.projections.conftest import Pipeline
from tests.projections.folds import FOLDS, ORDER_EVENTS, STAGE
from tests.support.api_server import ApiServer, api_server
from tests.support.pipeline import start_projector
from tests.support.workers import stop

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API and a running projector over the pipeline's namespace, caught up."""
    workdir = tmp_path_factory.mktemp("queries")
    pipeline.drop_read_models()
    with api_server(pipeline.endpoints, workdir, pipeline.prefix, TRADECORE_RATE_LIMIT="1000/second") as api:
        proc = start_projector(pipeline.endpoints, pipeline.prefix, workdir / "project.log")
        try:
            pipeline.wait_caught_up()
            yield api
        finally:
            stop(proc, workdir / "project.log")
            pipeline.drop_read_models()


def place(api: ApiServer, account: str = "ACC-A1") -> tuple[str, dict[str, object], str]:
    correlation = f"corr-{uuid.uuid4().hex[:8]}"
    with api.client("alice") as alice:
        answer = alice.post("/v1/orders", json=order(account), headers={"X-Correlation-Id": correlation})
    assert answer.status_code == 202, answer.text
    ack = answer.json()
    return ack["order_id"], ack["event"], correlation


def test_an_order_is_readable_right_after_its_post_with_min_offset(served: ApiServer) -> None:
    order_id, event, correlation = place(served)
    token = f"{event['topic']}:{event['partition']}:{event['offset']}"
    with served.client("alice") as alice:
        found = alice.get(f"/v1/orders/{order_id}", params={"min_offset": token})
        trail = alice.get(f"/v1/orders/{order_id}/events", params={"min_offset": token})
    assert found.status_code == 200, found.text
    order = found.json()
    assert (order["order_id"], order["account_id"], order["status"]) == (order_id, "ACC-A1", "PENDING")
    assert (order["quantity"], order["limit_price"], order["filled_quantity"]) == (
        "0.25000000",
        "39420.50000000",
        "0.00000000",
    )
    topic = event["topic"].removeprefix(served.topic_prefix)
    [passed] = [
        o for o in order["checkpoint"]["offsets"] if (o["topic"], o["partition"]) == (topic, event["partition"])
    ]
    assert passed["offset"] > event["offset"]
    assert trail.status_code == 200, trail.text
    [placed] = trail.json()["items"]
    assert (placed["event_type"], placed["correlation_id"]) == ("OrderPlaced", correlation)


def test_min_offset_beyond_the_log_or_malformed_is_422(served: ApiServer) -> None:
    with served.client("vera") as vera:
        beyond = vera.get("/v1/positions", params={"min_offset": "positions:0:999999999"})
        bad = vera.get("/v1/positions", params={"min_offset": "positions-0-1"})
        cursor = vera.get("/v1/positions", params={"cursor": "bm90IGEgY3Vyc29y"})
    # An offset not yet written can never be read past: the client's mistake, answered at once (issue 12, F2).
    assert beyond.status_code == 422 and "Retry-After" not in beyond.headers
    assert [(e["field"], e["rule"]) for e in beyond.json()["errors"]] == [("min_offset", "min_offset.end")]
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "min_offset"
    assert cursor.status_code == 422 and "cursor" in cursor.json()["detail"]


def test_pages_walk_every_row_once(pipeline: Pipeline, served: ApiServer) -> None:
    expected = FOLDS["positions"](pipeline.log)
    seen: list[tuple[str, str]] = []
    params: dict[str, str | int] = {"limit": 7}
    with served.client("vera") as vera:
        while True:
            page = vera.get("/v1/positions", params=params).json()
            assert page["checkpoint"]["projection"] == "positions" and page["checkpoint"]["offsets"]
            seen += [(row["account_id"], row["instrument"]) for row in page["items"]]
            if page["next"] is None:
                break
            params["cursor"] = page["next"]
    assert sorted(seen) == sorted(expected)
    assert len(seen) > 7, "the walk must span pages"
    with served.client("vera") as vera:
        one = vera.get("/v1/positions", params={"account_id": seen[0][0]}).json()["items"]
    assert {(r["account_id"], r["instrument"]) for r in one} == {k for k in expected if k[0] == seen[0][0]}
    assert all(Decimal(r["quantity"]) == expected[(r["account_id"], r["instrument"])]["quantity"] for r in one)


def test_traders_read_their_own_accounts_only(pipeline: Pipeline, served: ApiServer) -> None:
    someone_elses = next(iter(FOLDS["orders"](pipeline.log).values()))
    mine, _, _ = place(served)
    with served.client("alice") as alice:
        assert alice.get(f"/v1/orders/{someone_elses['order_id']}").status_code == 404
        assert alice.get(f"/v1/orders/{someone_elses['order_id']}/events").status_code == 404
        assert alice.get("/v1/positions", params={"account_id": someone_elses["account_id"]}).status_code == 403
        listed = alice.get("/v1/orders", params={"limit": 1000}).json()["items"]
        assert listed and {o["account_id"] for o in listed} <= {f"ACC-A{i}" for i in range(1, 30)}
        assert alice.get("/v1/risk/rejections").json()["items"] == []
    with served.client("bob") as bob:
        assert bob.get(f"/v1/orders/{mine}", params={"min_offset": "orders:0:0"}).status_code == 404
    with served.client("vera") as vera:
        assert vera.get(f"/v1/orders/{someone_elses['order_id']}").json()["status"] == someone_elses["status"]
    with served.client() as anonymous:
        assert anonymous.get("/v1/positions").status_code == 401


def test_an_orders_audit_trail_is_complete_and_in_causal_order(pipeline: Pipeline, served: ApiServer) -> None:
    events = pipeline.log.of(*ORDER_EVENTS)
    filled = next(e for _, _, _, e in events if e["envelope"]["event_type"] == "OrderFilled")
    mine = sorted(
        [(t, p, o, e) for t, p, o, e in events if e["order_id"] == filled["order_id"]],
        key=lambda r: (STAGE[r[0]], r[3]["envelope"]["occurred_at"], r[1], r[2]),
    )
    with served.client("vera") as vera:
        trail = vera.get(f"/v1/orders/{filled['order_id']}/events").json()
    assert trail["checkpoint"]["projection"] == "order_events"
    assert [r["event_id"] for r in trail["items"]] == [str(e["envelope"]["event_id"]) for _, _, _, e in mine]
    assert [r["event_type"] for r in trail["items"]][:2] == ["OrderPlaced", "OrderAccepted"]
    for row, (_, _, _, event) in zip(trail["items"], mine, strict=True):
        assert row["correlation_id"] == event["envelope"]["correlation_id"]
        assert row["causation_id"] == event["envelope"]["causation_id"]
    assert all(r["causation_id"] for r in trail["items"][1:]), "every event after the request names its cause"


def test_market_data_and_money_come_back_exact(pipeline: Pipeline, served: ApiServer) -> None:
    candles = FOLDS["candles"](pipeline.log)
    pnl = FOLDS["pnl"](pipeline.log)
    with served.client("vera") as vera:
        minutes = vera.get("/v1/candles", params={"instrument": "BTCUSDT", "timeframe": "1m"}).json()["items"]
        money = vera.get("/v1/pnl", params={"limit": 1000}).json()["items"]
        signals = vera.get("/v1/signals").json()["items"]
        fills = vera.get("/v1/fills", params={"limit": 5}).json()["items"]
        rejections = vera.get("/v1/risk/rejections", params={"limit": 1000}).json()["items"]
        wrong = vera.get("/v1/candles", params={"instrument": "BTCUSDT", "timeframe": "2m"})
    expected_minutes = sorted((k, v) for k, v in candles.items() if k[1] == "1m")
    assert len(minutes) == len(expected_minutes)
    for row, (_, candle) in zip(minutes, expected_minutes, strict=True):
        assert [Decimal(row[f]) for f in ("open", "high", "low", "close")] == [
            candle[f] for f in ("open", "high", "low", "close")
        ]
    for row in money:
        expected = pnl[(row["account_id"], row["instrument"])]
        assert Decimal(row["unrealized_pnl"]) == expected["unrealized_pnl"]
        assert Decimal(row["total_pnl"]) == expected["total_pnl"]
    assert {(s["instrument"], s["indicator"]) for s in signals} == set(FOLDS["signals_latest"](pipeline.log))
    assert len(fills) == 5 and all(isinstance(f["price"], str) for f in fills)
    assert {r["reason_code"] for r in rejections} == {
        r["reason_code"] for r in FOLDS["risk_rejections"](pipeline.log).values()
    }
    assert wrong.status_code == 422
