"""Each command lands as the right event, read back by a consumer that uses no tradecore code."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer
from tests.support.independent import IndependentReader

pytestmark = pytest.mark.integration


def test_a_placed_order_is_an_order_placed_event_where_the_api_says(
    api: ApiServer, reader: IndependentReader, account: str
) -> None:
    body = order(account)
    sent = datetime.now(UTC)
    with api.client("alice") as http:
        answer = http.post("/v1/orders", json=body, headers={"X-Correlation-ID": "corr-42"})
    answered = datetime.now(UTC)
    assert answer.status_code == 202
    ack = answer.json()
    assert ack["status"] == "PENDING"
    assert answer.headers["Location"] == f"/v1/orders/{ack['order_id']}"
    event = reader.at(ack["event"]["topic"], ack["event"]["partition"], ack["event"]["offset"])

    assert ack["event"]["topic"] == api.topic_prefix + "orders"
    assert event["order_id"] == ack["order_id"]
    assert event["account_id"] == account
    assert event["client_order_id"] == body["client_order_id"]
    assert (event["instrument"], event["side"], event["order_type"], event["time_in_force"]) == (
        "BTCUSDT",
        "BUY",
        "LIMIT",
        "GTC",
    )
    assert event["quantity"] == Decimal("0.25") and event["limit_price"] == Decimal("39420.50")
    envelope = event["envelope"]
    assert envelope["event_type"] == "OrderPlaced"
    assert envelope["aggregate_id"] == ack["order_id"] and envelope["sequence"] == 1
    assert envelope["correlation_id"] == "corr-42"
    # Stamped by the API while it handled this request (one clock, microseconds on the wire), however slow the
    # machine: a bound on "now" after reading the record back failed a loaded CI run at 62 s.
    assert sent <= envelope["recorded_at"] <= answered


def test_cancel_and_amend_follow_the_order_in_its_stream(
    api: ApiServer, reader: IndependentReader, account: str
) -> None:
    with api.client("alice") as http:
        placed = http.post("/v1/orders", json=order(account)).json()
        order_id = placed["order_id"]
        amended = http.patch(f"/v1/orders/{order_id}", json={"new_quantity": "0.5", "new_limit_price": "39400.00"})
        cancelled = http.delete(f"/v1/orders/{order_id}", params={"reason": "desk flat"})
    assert amended.status_code == 202 and cancelled.status_code == 202
    assert amended.json()["status"] == "AMEND_REQUESTED" and cancelled.json()["status"] == "CANCEL_REQUESTED"

    amend = reader.at(**amended.json()["event"])
    cancel = reader.at(**cancelled.json()["event"])
    assert amend["envelope"]["event_type"] == "AmendRequested"
    assert (amend["new_quantity"], amend["new_limit_price"]) == (Decimal("0.5"), Decimal("39400.00"))
    assert cancel["envelope"]["event_type"] == "CancelRequested" and cancel["reason"] == "desk flat"
    # One aggregate, one gap-free stream: placed 1, amended 2, cancelled 3; all keyed by the account's partition.
    assert [e["envelope"]["sequence"] for e in (amend, cancel)] == [2, 3]
    assert amend["instrument"] == cancel["instrument"] == "BTCUSDT"
    assert (
        placed["event"]["partition"] == amended.json()["event"]["partition"] == cancelled.json()["event"]["partition"]
    )


def test_risk_limits_and_kill_switch_are_events_of_the_account(api: ApiServer, reader: IndependentReader) -> None:
    limits = {
        "max_order_quantity": "10",
        "max_order_notional": "500000",
        "max_position_quantity": "25",
        "max_open_notional": "2000000",
        "daily_loss_limit": "50000",
        "max_orders_per_second": 50,
        "price_collar_bps": 500,
        "reference_max_age_ms": 60000,
    }
    with api.client("rita") as http:
        set_ = http.put("/v1/accounts/ACC-B1/risk-limits", json=limits)
        kill = http.post("/v1/kill-switch", json={"account_id": "ACC-B1", "engaged": True, "reason": "drill"})
    assert set_.status_code == 202 and kill.status_code == 202, (set_.text, kill.text)
    assert kill.json()["status"] == "kill_switch_engaged"
    limits_event = reader.at(**set_.json()["event"])
    kill_event = reader.at(**kill.json()["event"])
    assert limits_event["envelope"]["event_type"] == "RiskLimitsSet"
    assert limits_event["max_order_notional"] == Decimal("500000") and limits_event["set_by"] == "rita"
    assert limits_event["price_collar_bps"] == 500
    assert kill_event["envelope"]["event_type"] == "KillSwitchToggled"
    assert (kill_event["engaged"], kill_event["reason"], kill_event["set_by"]) == (True, "drill", "rita")
    assert kill_event["envelope"]["sequence"] == limits_event["envelope"]["sequence"] + 1


def test_a_tick_batch_is_one_event_per_tick_with_venue_time_and_gap_free_sequences(
    api: ApiServer, reader: IndependentReader
) -> None:
    ticks = [
        {"instrument": "EURUSD", "bid": "1.12120", "ask": "1.12172", "exchange_ts": f"2020-01-01T17:00:00.{i:06d}Z"}
        for i in range(50)
    ] + [{"instrument": "USDJPY", "last": "86.655", "last_size": "1000", "exchange_ts": "2013-01-01T22:00:00.295Z"}]
    with api.client("adam") as http:
        answer = http.post("/v1/ticks", json={"source": "unit-feed", "ticks": ticks})
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 51
    events = [e for e in reader.topic(api.topic_prefix + "ticks") if e["source"] == "unit-feed"]
    eurusd = sorted((e for e in events if e["instrument"] == "EURUSD"), key=lambda e: e["envelope"]["sequence"])
    assert len(eurusd) == 50
    first = eurusd[0]["envelope"]["sequence"]
    assert [e["envelope"]["sequence"] for e in eurusd] == list(range(first, first + 50))
    assert eurusd[7]["exchange_ts"] == datetime(2020, 1, 1, 17, 0, 0, 7, tzinfo=UTC)
    assert eurusd[7]["envelope"]["occurred_at"] == eurusd[7]["exchange_ts"]
    assert eurusd[7]["bid"] == Decimal("1.12120") and eurusd[7]["venue"] == "HISTDATA"
    [jpy] = [e for e in events if e["instrument"] == "USDJPY"]
    assert jpy["last"] == Decimal("86.655") and jpy["bid"] is None
    # The answer says where the batch is: per partition, its first and last offsets and how many — no more, no less.
    located = []
    for span in answer.json()["ranges"]:
        assert span["topic"] == api.topic_prefix + "ticks"
        records = reader.partition(span["topic"], span["partition"])
        mine = [(offset, value) for offset, _, value in records if value["source"] == "unit-feed"]
        assert (mine[0][0], mine[-1][0], len(mine)) == (span["first_offset"], span["last_offset"], span["count"])
        located += [value for _, value in mine]
    assert sorted(e["envelope"]["event_id"] for e in located) == sorted(e["envelope"]["event_id"] for e in events)
