"""The order memory: what risk keeps of finished orders and client order ids, and for how long (event time)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from domain.derive import UNTRACKED
from domain.lifecycle import ORDER_MEMORY
from domain.risk import RiskEngine, SnapshotError
from schemas.events import CancelAccepted, Event, OrderAccepted, OrderRejected
from tests.domain.risk.scenario import LIMITS, cancel, engine, feed, filled, placed, quotes, registry, tick

Q = quotes()[0]
DAY = timedelta(days=1)
PER_DAY = 100


def finished_orders(days: int) -> Iterator[Event]:
    """``PER_DAY`` orders a day, each filled in full at once, ten a second, with a fresh tick every second.

    A handful a day keeps the test quick: what matters is the number of days beyond the memory, not of orders."""
    for n in range(days * PER_DAY):
        day, i = divmod(n, PER_DAY)
        at = Q.at + day * DAY + i * timedelta(milliseconds=100)
        if i % 10 == 0:
            yield tick(Q, at=at)
        order_id = f"ord-{n:06d}"
        yield placed(n, at, order_id=order_id, client_order_id=f"cli-{n:06d}")
        yield filled(order_id, at, quantity="0.25", leaves="0")


def fed(events: Iterator[Event] | list[Event], risk: RiskEngine | None = None) -> RiskEngine:
    risk = engine() if risk is None else risk
    feed(risk, events)
    return risk


def test_state_does_not_grow_with_the_number_of_finished_orders() -> None:
    one_day = fed(finished_orders(1))
    twenty_days = fed(finished_orders(20))

    # 100 against 2,000 finished orders: the same last day is remembered, nothing of the days before it.
    assert len(twenty_days.to_snapshot()) <= 1.02 * len(one_day.to_snapshot())
    account = twenty_days.accounts["acc-7"]
    assert len(account.client_order_ids) == len(account.finished) == PER_DAY
    assert not account.open_orders
    assert min(account.client_order_ids) == f"cli-{19 * PER_DAY:06d}"


def test_a_duplicate_client_order_id_within_the_memory_is_rejected_with_its_reason() -> None:
    at = Q.at + ORDER_MEMORY - timedelta(seconds=1)
    out = feed(
        fed([tick(Q), placed(1, Q.at), filled("ord-1", Q.at, quantity="0.25", leaves="0")]),
        [
            tick(Q, at=at),
            placed(2, at, order_id="ord-2", client_order_id="cli-1"),
        ],
    )

    assert [type(e) for e in out] == [OrderRejected]
    assert isinstance(out[0], OrderRejected)
    assert out[0].reason_code == "DUPLICATE_CLIENT_ORDER_ID"
    assert "client_order_id cli-1 was already used by account acc-7" in out[0].reason


def test_a_client_order_id_last_used_beyond_the_memory_is_free_again() -> None:
    at = Q.at + ORDER_MEMORY + timedelta(seconds=1)
    risk = fed([tick(Q), placed(1, Q.at), filled("ord-1", Q.at, quantity="0.25", leaves="0")])

    out = feed(risk, [tick(Q, at=at), placed(2, at, order_id="ord-2", client_order_id="cli-1")])

    assert [type(e) for e in out] == [OrderAccepted]
    assert "ord-1" not in risk.accounts["acc-7"].finished


def test_the_memory_is_configurable() -> None:
    at = Q.at + timedelta(hours=2)
    short = RiskEngine(LIMITS, registry(), order_memory=timedelta(hours=1))
    feed(short, [tick(Q), placed(1, Q.at), filled("ord-1", Q.at, quantity="0.25", leaves="0")])

    out = feed(short, [tick(Q, at=at), placed(2, at, order_id="ord-2", client_order_id="cli-1")])

    assert [type(e) for e in out] == [OrderAccepted]


def test_a_working_order_placed_again_however_late_is_not_decided_again() -> None:
    """The gateway appends an order's placement again when a client retries one Kafka did not confirm: the same
    order, so risk's first decision stands and nothing new lands in the order's stream."""
    at = Q.at + 2 * ORDER_MEMORY
    risk = fed([tick(Q), placed(1, Q.at)])

    out = feed(risk, [tick(Q, at=at), placed(1, at)])  # same client order id, so the same order id

    assert out == []
    assert "ord-1" in risk.accounts["acc-7"].open_orders


def test_a_late_cancel_continues_the_order_stream_while_remembered_and_never_reuses_a_sequence_after() -> None:
    risk = fed([tick(Q), placed(1, Q.at), filled("ord-1", Q.at, quantity="0.25", leaves="0")])
    soon, late = Q.at + timedelta(hours=1), Q.at + 3 * ORDER_MEMORY

    remembered = feed(risk, [cancel("ord-1", soon)])
    forgotten_request = cancel("ord-1", late)
    forgotten = feed(risk, [forgotten_request])

    assert [(type(e), e.envelope.sequence) for e in remembered] == [(CancelAccepted, 2)]
    # Forgotten: numbered above any count risk keeps, from the request, so its event id is not the decision's.
    assert [(type(e), e.envelope.sequence) for e in forgotten] == [
        (CancelAccepted, UNTRACKED + forgotten_request.envelope.sequence)
    ]
    assert "ord-1" not in json.loads(risk.to_snapshot())["sequences"]


def test_forgetting_is_the_same_from_a_snapshot_as_in_one_pass() -> None:
    history = list(finished_orders(3))
    half = len(history) // 2
    first = fed(history[:half])
    restored = RiskEngine.from_snapshot(first.to_snapshot(), default_limits=LIMITS, instruments=registry())

    assert fed(history[half:], restored).to_snapshot() == fed(history).to_snapshot()


def test_a_snapshot_of_the_format_before_the_order_memory_is_refused_for_a_full_replay() -> None:
    document = json.loads(fed([tick(Q), placed(1, Q.at)]).to_snapshot())
    document["format"] = "tradecore.risk/1"
    account = document["accounts"]["acc-7"]
    account["client_order_ids"] = ["cli-1"]  # as format 1 wrote them: no times to forget by
    del account["now"], account["finished"]

    with pytest.raises(SnapshotError, match=r"not a tradecore\.risk/2 snapshot"):
        RiskEngine.from_snapshot(json.dumps(document).encode(), default_limits=LIMITS, instruments=registry())


def test_the_account_event_time_ignores_execution_reports() -> None:
    far: datetime = Q.at + 10 * ORDER_MEMORY
    risk = fed([tick(Q), placed(1, Q.at), filled("ord-1", far, quantity="0.25", leaves="0")])

    assert risk.accounts["acc-7"].now == Q.at


def test_a_decided_order_placed_again_is_not_decided_again_whatever_became_of_it() -> None:
    """Rejected, or filled and finished: its placement appended again (a retried append) adds nothing to its stream —
    no second rejection contradicting the first, no rejection of an order that was filled."""
    soon = Q.at + timedelta(seconds=1)
    rejected = fed([tick(Q), placed(1, Q.at, quantity=Decimal(9))])
    finished = fed([tick(Q), placed(1, Q.at), filled("ord-1", Q.at, quantity="0.25", leaves="0")])

    assert feed(rejected, [placed(1, soon, quantity=Decimal(9))]) == []
    assert feed(finished, [placed(1, soon)]) == []
    # the stream continues where the first decision left it
    [answer] = feed(finished, [cancel("ord-1", soon)])
    assert (type(answer), answer.envelope.sequence) == (CancelAccepted, 2)
