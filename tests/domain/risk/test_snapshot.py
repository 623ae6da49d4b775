"""Snapshots: everything risk knows survives the round trip, and the restored engine decides exactly as the original."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from domain.risk import RiskEngine, SnapshotError
from schemas.events import Event, Side
from tests.domain.risk.scenario import (
    LIMITS,
    amend,
    engine,
    feed,
    filled,
    kill_switch,
    limits,
    placed,
    position,
    price_tick,
    quotes,
    registry,
    tick,
)

D = Decimal
MS = timedelta(milliseconds=1)
Q = quotes()[0]


def busy() -> RiskEngine:
    """An engine that has seen a bit of everything: limits, working and pending orders, fills, positions, PnL."""
    risk = engine()
    feed(
        risk,
        [
            *(tick(q) for q in quotes()[:5]),
            price_tick("EURUSD", "1.12345", Q.at),
            limits(Q.at, account_id="acc-8", max_orders_per_second=3, max_order_quantity=D(20_000)),
            placed(1, Q.at + 100 * MS),
            placed(2, Q.at + 110 * MS, side=Side.SELL, quantity=D("1.5"), limit_price=D("39500.00")),
            placed(3, Q.at + 120 * MS, account_id="acc-8"),
            placed(4, Q.at + 130 * MS, account_id="acc-8", instrument="EURUSD", quantity=D(10), limit_price=D("1.12")),
            placed(5, Q.at + 140 * MS, quantity=D(9)),  # rejected
            filled("ord-2", Q.at + 150 * MS, quantity="0.5", leaves="1.0"),
            position(Q.at + 150 * MS, quantity="-0.5", realized="-12.5"),
            position(Q.at + 160 * MS, quantity="10", realized="-30000", instrument="BTC-PERP"),
            amend("ord-1", Q.at + 170 * MS, new_quantity=D("0.4")),  # accepted, not yet confirmed by the venue
            kill_switch(True, Q.at + 180 * MS, account_id="acc-9"),
        ],
    )
    return risk


def restored(data: bytes) -> RiskEngine:
    return RiskEngine.from_snapshot(data, default_limits=LIMITS, instruments=registry())


def test_the_round_trip_keeps_every_part_of_the_state() -> None:
    original = busy()
    data = original.to_snapshot()

    copy = restored(data)

    assert copy.to_snapshot() == data
    assert copy.references == original.references
    assert copy.accounts == original.accounts
    pending = copy.accounts["acc-7"].open_orders["ord-1"]
    assert (pending.quantity, pending.amend_quantity) == (D("0.25"), D("0.4"))
    assert copy.accounts["acc-7"].open_notional("USDT") == original.accounts["acc-7"].open_notional("USDT")
    assert copy.accounts["acc-8"].working_quantity("EURUSD", Side.BUY) == D(10)


def test_the_restored_engine_decides_as_the_original_would() -> None:
    def then() -> list[Event]:
        t = Q.at + 200 * MS
        return [
            placed(6, t, account_id="acc-8"),  # acc-8's third order within a second: its limit is 3
            placed(7, t + MS, account_id="acc-8"),  # the fourth: ORDER_RATE
            placed(8, t + 2 * MS, client_order_id="cli-5"),  # the rejected order's client order id
            placed(9, t + 3 * MS, account_id="acc-9"),  # kill switch
            amend("ord-1", t + 4 * MS, new_quantity=D("0.5")),
            kill_switch(True, t + 5 * MS),  # cancels ord-1 and ord-2, in that order
            placed(10, t + 6 * MS, side=Side.SELL, quantity=D("0.1")),
        ]

    original = busy()
    copy = restored(original.to_snapshot())

    assert feed(copy, then()) == feed(original, then())
    assert copy.to_snapshot() == original.to_snapshot()


def test_equal_states_give_equal_bytes_that_a_person_can_read() -> None:
    data = busy().to_snapshot()

    assert busy().to_snapshot() == data
    document = json.loads(data)
    assert json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == data
    assert document["references"]["BTCUSDT"][-1]["price"] == str(quotes()[4].mid)
    assert document["accounts"]["acc-7"]["realized"]["BTC-PERP"] == ["USD", "-30000", "2021-01-08", "0"]
    assert [o["order_id"] for o in document["accounts"]["acc-7"]["open_orders"]] == ["ord-1", "ord-2"]


def test_any_client_order_id_is_written_as_canonical_json_and_read_back() -> None:
    risk = busy()
    odd = 'é 😀 "quoted" back\\slash\ttab\x00nul\x7f\u2028'
    feed(risk, [placed(6, Q.at + 200 * MS, account_id="acc-8", client_order_id=odd)])
    data = risk.to_snapshot()

    assert json.dumps(json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == data
    assert restored(data).to_snapshot() == data
    assert [cid for cid, _ in json.loads(data)["accounts"]["acc-8"]["client_order_ids"]][-1] == odd


def test_a_snapshot_from_before_the_reference_history_still_loads() -> None:
    document = json.loads(busy().to_snapshot())
    document["references"] = {s: refs[-1] for s, refs in document["references"].items()}  # one each, as they were

    copy = restored(json.dumps(document).encode())

    assert copy.references == busy().references


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'{"format": "tradecore.risk/0"}', b'{"format": "tradecore.risk/1", "accounts": {}}'],
)
def test_what_is_not_a_snapshot_is_refused(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        restored(data)
