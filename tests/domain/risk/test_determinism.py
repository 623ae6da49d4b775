"""Same inputs, same outputs, byte for byte: two engines, a restored snapshot, another decimal context — one result.

The inputs are 10,000 generated orders of six accounts, interleaved in event time with the 451 recorded BTCUSDT quotes
and with the cancels, amends, fills, position changes, limit changes and kill switches such a day brings. They are
generated from a fixed seed, so every run feeds the same log.
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
from collections import Counter
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any

import fastavro
import pytest

from domain.risk import NEW_ORDER_CHECKS, RiskEngine
from schemas import codec
from schemas.events import Event, OrderAccepted, OrderRejected, OrderType, Side, TimeInForce
from tests.domain.risk.scenario import (
    LIMITS,
    amend,
    amended,
    cancel,
    cancelled,
    engine,
    expired,
    feed,
    filled,
    kill_switch,
    limits,
    placed,
    position,
    quotes,
    registry,
    tick,
)

# One xdist worker runs this module (`make unit` passes --dist loadgroup): the generated day is built once.
pytestmark = pytest.mark.xdist_group("risk-generated-day")

ORDERS = 10_000
ACCOUNTS = [f"acc-{n}" for n in range(1, 7)]
CENT = Decimal("0.01")
QUANTITIES = ["0.001", "0.01", "0.1", "0.25", "1", "2.5", "6", "0.0000015"]


@functools.cache
def day() -> tuple[Event, ...]:
    """The generated log: orders and what follows them, merged in event time with the real quotes."""
    rng = random.Random(20210108)
    ticks = quotes()
    # From half a second before the first quote (no reference yet) to 8 s after the last (a stale one).
    start = ticks[0].at - timedelta(milliseconds=500)
    span_us = (ticks[-1].at - start) // timedelta(microseconds=1) + 8_000_000
    times = sorted(start + timedelta(microseconds=rng.randrange(span_us)) for _ in range(ORDERS))
    realized = dict.fromkeys(ACCOUNTS, 0)
    held = dict.fromkeys(ACCOUNTS, Decimal(0))
    live: dict[str, list[str]] = {account: [] for account in ACCOUNTS}  # placed, and not yet done at the venue
    release: dict[str, int] = {}  # account -> the order number at which its engaged kill switch is released
    log: list[Event] = []
    next_tick = 0
    for n, at in enumerate(times):
        while next_tick < len(ticks) and ticks[next_tick].at <= at:
            log.append(tick(ticks[next_tick]))
            next_tick += 1
        mid = ticks[max(next_tick - 1, 0)].mid
        account = rng.choice(ACCOUNTS)
        if release.get(account, ORDERS) <= n:
            log.append(kill_switch(False, at - timedelta(microseconds=1), account_id=account))
            del release[account]
        log.append(_order(rng, n, at, account, mid))
        live[account].append(f"ord-{n}")
        # Mostly one of the account's working orders; now and then one it does not hold.
        mine = rng.random() < 0.95
        target = rng.choice(live[account]) if mine else f"ord-{rng.randrange(n + 1)}"
        later = at + timedelta(microseconds=rng.randrange(1, 500))
        done = False
        roll = rng.random()
        if roll < 0.3:
            part, leaves = rng.choice(["0.001", "0.01", "0.05"]), rng.choice(["0", "0", "0.05"])
            log.append(filled(target, later, quantity=part, leaves=leaves, account_id=account))
            held[account] += Decimal(rng.choice(["0.5", "1", "2"])) * rng.choice([1, -1])
            realized[account] += rng.randrange(-2_000, 1_800)
            log.append(
                position(later, quantity=str(held[account]), realized=str(realized[account]), account_id=account)
            )
            done = leaves == "0"
        elif roll < 0.4:
            log.append(cancel(target, later, account_id=account))
        elif roll < 0.6:
            log.append(cancelled(target, later, account_id=account))
            done = True
        elif roll < 0.65:
            log.append(expired(target, later, account_id=account))
            done = True
        elif roll < 0.75:
            price = (mid * _bps(rng, 80)).quantize(CENT)
            log.append(amend(target, later, account_id=account, new_quantity=Decimal("0.3"), new_limit_price=price))
        elif roll < 0.78:
            leaves = rng.choice(["0.3", "0.2", "0"])
            venue = {"quantity": "0.3", "limit_price": str(mid.quantize(CENT)), "leaves": leaves}
            log.append(amended(target, later, account_id=account, **venue))
            done = leaves == "0"
        elif roll < 0.781 and account not in release:
            log.append(kill_switch(True, later, account_id=account))
            release[account] = n + rng.randrange(20, 200)
        elif roll < 0.785:
            rate, notional = rng.choice([5, 20, 50]), Decimal(rng.choice([50_000, 250_000]))
            log.append(limits(later, account_id=account, max_orders_per_second=rate, max_order_notional=notional))
        if done and mine:
            live[account].remove(target)
    log.extend(tick(q) for q in ticks[next_tick:])
    return tuple(log)


def _bps(rng: random.Random, most: int) -> Decimal:
    """1 plus or minus up to ``most`` basis points."""
    return Decimal(10_000 + rng.randrange(-most, most)) / 10_000


def _order(rng: random.Random, n: int, at: datetime, account: str, mid: Decimal) -> Event:
    fields: dict[str, Any] = {
        "account_id": account,
        "side": rng.choice([Side.BUY, Side.SELL]),
        "quantity": Decimal(rng.choices(QUANTITIES, weights=[20, 20, 20, 15, 10, 5, 3, 2])[0]),
    }
    if rng.random() < 0.1:
        fields.update(order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC, limit_price=None)
    else:
        # Mostly near the touch; some beyond the 500 bp collar.
        fields["limit_price"] = (mid * _bps(rng, 700)).quantize(CENT)
        if rng.random() < 0.005:
            fields["limit_price"] += Decimal("0.005")  # off the tick
    if rng.random() < 0.01:
        fields["instrument"] = rng.choice(["DOGEUSDT", "HALTED"])
    if rng.random() < 0.01 and n:
        fields["client_order_id"] = f"cli-{rng.randrange(n)}"
    return placed(n, at, **fields)


def avro_hashes(events: list[Event]) -> list[str]:
    """Each event as its Avro body would be written, hashed: byte-identical events have equal hashes."""
    hashes = []
    for event in events:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, _parsed(type(event)), codec.to_avro(event))
        hashes.append(hashlib.sha256(body.getvalue()).hexdigest())
    return hashes


_SCHEMAS: dict[str, Any] = {}


def _parsed(cls: type[Event]) -> Any:
    if cls.__name__ not in _SCHEMAS:
        _SCHEMAS[cls.__name__] = fastavro.parse_schema(cls.schema())
    return _SCHEMAS[cls.__name__]


@functools.cache
def reference_run() -> tuple[tuple[Event, ...], bytes]:
    """What one engine derives from the day, and its state at the end."""
    risk = engine()
    return tuple(feed(risk, day())), risk.to_snapshot()


@functools.cache
def reference_hashes() -> list[str]:
    return avro_hashes(list(reference_run()[0]))


def test_the_generated_day_exercises_every_outcome() -> None:
    outputs, _ = reference_run()
    kinds = Counter(type(e).__name__ for e in outputs)
    codes = Counter(e.reason_code for e in outputs if isinstance(e, OrderRejected))

    assert sum(isinstance(e, OrderAccepted | OrderRejected) for e in outputs) == ORDERS
    assert kinds["OrderAccepted"] > 2_000
    assert {"CancelAccepted", "AmendAccepted", "AmendRejected"} <= set(kinds)
    assert set(codes) == {code for code, _ in NEW_ORDER_CHECKS}, codes


def test_two_engines_fed_the_same_log_write_byte_identical_events() -> None:
    outputs, snapshot = reference_run()
    other = engine()

    # The caller's decimal context must not matter: the engine computes under its own.
    with localcontext(prec=5, rounding=ROUND_FLOOR):
        again = feed(other, day())

    assert again == list(outputs)
    assert avro_hashes(again) == reference_hashes()
    assert other.to_snapshot() == snapshot


def test_an_engine_restored_from_a_snapshot_mid_stream_continues_identically() -> None:
    outputs, snapshot = reference_run()
    log = day()
    cuts = [1, len(log) // 3, len(log) // 2, len(log) - 7]
    risk = engine()
    produced: list[Event] = []
    start = 0
    for cut in [*cuts, len(log)]:
        produced += feed(risk, log[start:cut])
        start = cut
        saved = risk.to_snapshot()
        risk = RiskEngine.from_snapshot(saved, default_limits=LIMITS, instruments=registry())
        assert risk.to_snapshot() == saved  # the round trip loses nothing, and writes the same bytes

    assert produced == list(outputs)
    assert risk.to_snapshot() == snapshot
