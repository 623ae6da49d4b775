"""The daily loss limit counts realized PnL from 00:00 UTC of the order's event time: yesterday's losses don't count.

The recorded quotes start at 2021-01-08 00:00:01 UTC; for the minutes before midnight the first quote's prices are
used at an earlier event time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.risk import RiskEngine
from schemas.events import Event, OrderAccepted, OrderRejected, Side
from tests.domain.risk.scenario import engine, feed, placed, position, quotes, tick

Q = quotes()[0]
MIDNIGHT = datetime(2021, 1, 8, tzinfo=UTC)
US = timedelta(microseconds=1)


def decide(risk: RiskEngine, n: int, at: datetime, side: Side = Side.BUY) -> Event:
    [decision] = risk.handle(placed(n, at, side=side, quantity=Decimal("0.1")))
    return decision


def test_losses_count_from_midnight_utc() -> None:
    risk = engine()  # daily loss limit 50,000
    feed(
        risk,
        [
            tick(Q, at=MIDNIGHT - timedelta(seconds=2)),
            position(MIDNIGHT - timedelta(seconds=1), quantity="1", realized="-60000"),
        ],
    )

    last_of_the_day = decide(risk, 1, MIDNIGHT - US)
    reducing = decide(risk, 2, MIDNIGHT - US, Side.SELL)
    first_of_the_next = decide(risk, 3, MIDNIGHT)

    assert isinstance(last_of_the_day, OrderRejected) and last_of_the_day.reason_code == "DAILY_LOSS_LIMIT"
    assert "since 2021-01-07T00:00:00+00:00 is -60000.00000000 USDT" in last_of_the_day.reason
    assert isinstance(reducing, OrderAccepted)
    assert isinstance(first_of_the_next, OrderAccepted)


def test_the_new_day_counts_only_its_own_losses() -> None:
    risk = engine()
    feed(risk, [tick(Q, at=MIDNIGHT - timedelta(seconds=2)), position(MIDNIGHT - US, quantity="1", realized="-60000")])
    feed(risk, [tick(q) for q in quotes()[:10]])
    t = quotes()[9].at

    # Cumulative -109,999: -49,999 of it today.
    feed(risk, [position(t, quantity="1.5", realized="-109999")])
    within = decide(risk, 1, t + US)
    # Cumulative -110,000.00000001: -50,000.00000001 today.
    feed(risk, [position(t + 2 * US, quantity="2", realized="-110000.00000001")])
    beyond = decide(risk, 2, t + 3 * US)

    assert isinstance(within, OrderAccepted)
    assert isinstance(beyond, OrderRejected) and beyond.reason_code == "DAILY_LOSS_LIMIT"
    assert "since 2021-01-08T00:00:00+00:00 is -50000.00000001 USDT" in beyond.reason


def test_gains_today_offset_losses_today() -> None:
    risk = engine()
    feed(risk, [tick(Q), position(Q.at, quantity="1", realized="-60000")])
    assert isinstance(decide(risk, 1, Q.at + US), OrderRejected)

    feed(risk, [position(Q.at + 2 * US, quantity="0.5", realized="-45000")])

    assert isinstance(decide(risk, 2, Q.at + 3 * US), OrderAccepted)
