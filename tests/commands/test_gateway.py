"""The command gateway on the in-memory store and log: group-committed placements, idempotent repeats, and what a
client sees when Kafka does not confirm an event (an error, and the client_order_id kept for a retry of the same
request — never another order under it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import problems
from commands.decide import Stamp
from commands.gateway import Appended, ClientOrderIdReused, CommandGateway, Headers, Placed, UnknownOrder
from commands.models import CancelOrder, IngestTicks, PlaceOrder, Tick
from commands.refs import OrderRef
from domain.instruments import InstrumentRegistry
from schemas.events import CancelRequested, Event, OrderPlaced
from streams.errors import AppendFailed
from tests.support.contracts import STAMP
from tests.support.memory import MemoryCommandStore, MemoryEventLog

INSTRUMENTS = InstrumentRegistry.from_file()


def order(client_order_id: str, account: str = "ACC-1", quantity: str = "0.5") -> PlaceOrder:
    return PlaceOrder.model_validate(
        {
            "account_id": account,
            "client_order_id": client_order_id,
            "instrument": "BTCUSDT",
            "side": "BUY",
            "order_type": "LIMIT",
            "time_in_force": "GTC",
            "quantity": quantity,
            "limit_price": "39000.00",
        }
    )


class CountingLog(MemoryEventLog):
    """The in-memory log, remembering the batches it was given."""

    def __init__(self, refuse_client_order_ids: set[str] | None = None) -> None:
        refused = refuse_client_order_ids if refuse_client_order_ids is not None else set()
        super().__init__(refuse=lambda e: AppendFailed("broker refused") if _coid(e) in refused else None)
        self.refused = refused
        self.batches: list[int] = []

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        self.batches.append(len(events))
        return await super().append(events, headers)


def _coid(event: Event) -> str | None:
    return event.client_order_id if isinstance(event, OrderPlaced) else None


def gateway(log: MemoryEventLog, store: MemoryCommandStore | None = None) -> CommandGateway:
    return CommandGateway(log, store or MemoryCommandStore(), INSTRUMENTS, placements_in_flight=1)


def anyone(_order: OrderRef) -> None:
    """Authorizes every caller."""


def test_an_idle_gateway_places_an_order_alone_and_at_once() -> None:
    log = CountingLog()
    placed = asyncio.run(gateway(log).place(order("c-1"), STAMP))
    assert not placed.repeated
    assert log.batches == [1]
    [event] = log.events("orders")
    assert isinstance(event, OrderPlaced) and event.order_id == placed.order_id
    assert placed.appended == Appended("orders", placed.appended.partition, 0)


def test_placements_that_arrive_together_share_a_batch_and_each_get_their_own_order() -> None:
    log = CountingLog()

    async def main() -> list[Placed]:
        gw = gateway(log)
        return await asyncio.gather(*(gw.place(order(f"c-{i}", account=f"ACC-{i % 3}"), STAMP) for i in range(30)))

    placed = asyncio.run(main())
    assert len({p.order_id for p in placed}) == 30
    assert sum(log.batches) == 30
    assert len(log.batches) < 30, f"no batching: {log.batches}"
    assert {e.order_id for e in log.events("orders")} == {p.order_id for p in placed}


def test_a_repeated_request_answers_the_first_placement_in_the_batch_and_after_it() -> None:
    log = CountingLog()

    async def main() -> tuple[list[Placed], Placed]:
        gw = gateway(log)
        together = await asyncio.gather(*(gw.place(order("same"), STAMP) for _ in range(4)))
        later = await gw.place(order("same"), STAMP)
        return together, later

    together, later = asyncio.run(main())
    assert len(log.events("orders")) == 1, "one order, however often it is asked for"
    assert {p.order_id for p in [*together, later]} == {together[0].order_id}
    assert sum(not p.repeated for p in together) == 1
    assert later.repeated and later.appended == next(p for p in together if not p.repeated).appended


def test_a_client_order_id_reused_for_another_order_is_refused_in_the_batch_and_after_it() -> None:
    log = CountingLog()

    async def main() -> tuple[list[Placed | BaseException], Placed | BaseException]:
        gw = gateway(log)
        together = await asyncio.gather(
            gw.place(order("dup", quantity="0.5"), STAMP),
            gw.place(order("dup", quantity="0.7"), STAMP),
            return_exceptions=True,
        )
        [later] = await asyncio.gather(gw.place(order("dup", quantity="0.9"), STAMP), return_exceptions=True)
        return together, later

    (first, second), later = asyncio.run(main())
    assert isinstance(first, Placed)
    assert isinstance(second, ClientOrderIdReused) and isinstance(later, ClientOrderIdReused)
    assert f"client_order_id dup of account ACC-1 was used for another order ({first.order_id})" == str(later)
    assert len(log.events("orders")) == 1


def test_when_kafka_does_not_confirm_an_order_its_caller_hears_why_and_only_the_same_request_places_it() -> None:
    """Kafka's failure does not say the record is not in the log (an acknowledgement that timed out): the claim
    stays, unconfirmed, so a retry of the request appends the same order again — never another order under its
    client order id."""
    log = CountingLog(refuse_client_order_ids={"refused"})
    store = MemoryCommandStore()

    async def main() -> list[Placed | BaseException]:
        gw = gateway(log, store)
        return await asyncio.gather(
            gw.place(order("taken-1"), STAMP),
            gw.place(order("refused"), STAMP),
            gw.place(order("taken-2"), STAMP),
            return_exceptions=True,
        )

    taken_1, refused, taken_2 = asyncio.run(main())
    assert isinstance(refused, AppendFailed), "an error, not a placed order"
    assert isinstance(taken_1, Placed) and isinstance(taken_2, Placed), "the rest of the batch is placed"
    assert store.claimed("ACC-1", "refused"), "the claim stays"
    assert store.claimed("ACC-1", "taken-1") and store.claimed("ACC-1", "taken-2")
    assert {e.client_order_id for e in log.events("orders") if isinstance(e, OrderPlaced)} == {"taken-1", "taken-2"}

    log.refused.clear()  # Kafka is back
    with pytest.raises(ClientOrderIdReused):
        asyncio.run(gateway(log, store).place(order("refused", quantity="0.7"), STAMP))
    retried = asyncio.run(gateway(log, store).place(order("refused"), STAMP))
    assert not retried.repeated
    [placed] = [e for e in log.events("orders") if isinstance(e, OrderPlaced) and e.client_order_id == "refused"]
    assert (placed.order_id, placed.quantity) == (retried.order_id, Decimal("0.5"))
    again = asyncio.run(gateway(log, store).place(order("refused"), STAMP))
    assert again.repeated and again.appended == retried.appended


def test_an_unconfirmed_order_is_answered_503_with_what_to_do() -> None:
    """Through the API's error mapping: the client hears the order may be in the log and to retry the same request,
    with no order id."""
    log = CountingLog(refuse_client_order_ids={"c-1"})
    gw = gateway(log)
    app = FastAPI()
    problems.install(app)

    @app.post("/orders")
    async def place(command: PlaceOrder) -> dict[str, str]:
        placed = await gw.place(command, STAMP)
        return {"order_id": placed.order_id}

    answer = TestClient(app).post("/orders", json=order("c-1").model_dump(mode="json"))
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["detail"] == problems.UNCONFIRMED
    assert "retry the same request" in problems.UNCONFIRMED
    assert "order_id" not in answer.json()
    assert log.events("orders") == []


def test_a_store_that_fails_fails_every_placement_of_the_batch_and_appends_nothing() -> None:
    class DownStore(MemoryCommandStore):
        def placing(self):  # type: ignore[no-untyped-def]
            raise ConnectionError("the write side's database is down")

    log = CountingLog()

    async def main() -> list[Placed | BaseException]:
        gw = gateway(log, DownStore())
        return await asyncio.gather(*(gw.place(order(f"c-{i}"), STAMP) for i in range(3)), return_exceptions=True)

    assert all(isinstance(outcome, ConnectionError) for outcome in asyncio.run(main()))
    assert log.events("orders") == []


class SlowEndStore(MemoryCommandStore):
    """Placements whose end — the record of where the orders landed — takes ``RECORD_S``; claims that raise, once
    ``down``."""

    RECORD_S = 0.04

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    @asynccontextmanager
    async def placing(self) -> AsyncIterator[Any]:  # type: ignore[override]
        async with super().placing() as placing:
            if self.down:
                placing.claim_orders = _refuse  # type: ignore[method-assign]
            yield placing
            await asyncio.sleep(self.RECORD_S)


async def _refuse(_claims: object) -> None:
    raise ConnectionError("the write side's database is down")


class SlowLog(CountingLog):
    APPEND_S = 0.02

    async def append(
        self, events: Sequence[Event], headers: Sequence[Headers | None] | None = None
    ) -> list[Appended | Exception]:
        await asyncio.sleep(self.APPEND_S)
        return await super().append(events, headers)


def test_each_step_of_a_group_commit_is_heard_with_its_time_a_failed_one_too() -> None:
    heard: list[tuple[str, float]] = []
    store = SlowEndStore()
    gw = CommandGateway(
        SlowLog(), store, INSTRUMENTS, placement_step=lambda step, seconds: heard.append((step, seconds))
    )
    asyncio.run(gw.place(order("c-1"), STAMP))
    assert [step for step, _ in heard] == ["claim", "append", "record"]
    times = dict(heard)
    assert times["claim"] < SlowLog.APPEND_S <= times["append"] < SlowEndStore.RECORD_S <= times["record"]

    heard.clear()
    store.down = True
    with pytest.raises(ConnectionError):
        asyncio.run(gw.place(order("c-2"), STAMP))
    assert [step for step, _ in heard] == ["claim"], "a claim that failed is heard, and nothing after it ran"


def test_a_cancel_continues_the_order_stream_and_one_kafka_did_not_confirm_keeps_its_sequence() -> None:
    """An unknown order consumes no sequence; a cancel whose append failed may be in the log, so the next command on
    the order is numbered after it: no two events of the stream share a sequence, or the id derived from it."""
    log = CountingLog()
    store = MemoryCommandStore()
    gw = gateway(log, store)
    placed = asyncio.run(gw.place(order("c-1"), STAMP))
    cancel = CancelOrder(reason="changed my mind")

    with pytest.raises(UnknownOrder):
        asyncio.run(gw.cancel("no-such-order", cancel, STAMP, anyone))

    log.refuse = lambda _event: AppendFailed("broker refused")
    with pytest.raises(AppendFailed):
        asyncio.run(gw.cancel(placed.order_id, cancel, Stamp(STAMP.at, "c"), anyone))
    log.refuse = lambda _event: None
    done = asyncio.run(gw.cancel(placed.order_id, cancel, Stamp(STAMP.at, "c"), anyone))
    assert isinstance(done.event, CancelRequested)
    assert done.event.envelope.sequence == 3, "OrderPlaced is 1, the unconfirmed cancel 2"


def test_a_tick_batch_kafka_did_not_confirm_keeps_its_sequences_so_no_later_tick_takes_its_ids() -> None:
    """A failed append may be in the log in part: the next batch numbers on after it (a gap, never one id twice)."""
    log = CountingLog()
    store = MemoryCommandStore()
    gw = gateway(log, store)

    def batch(*seconds: int) -> IngestTicks:
        ticks = [
            Tick(instrument="BTCUSDT", bid="1", ask="2", exchange_ts=STAMP.at - timedelta(seconds=s)) for s in seconds
        ]
        return IngestTicks(source="desk-feed", ticks=ticks)

    log.refuse = lambda event: AppendFailed("not acknowledged") if event.envelope.sequence == 2 else None
    with pytest.raises(AppendFailed):
        asyncio.run(gw.ingest_ticks(batch(30, 29, 28), STAMP))
    assert [e.envelope.sequence for e in log.events("ticks")] == [1, 3]  # in the log in part
    log.refuse = lambda _event: None
    asyncio.run(gw.ingest_ticks(batch(27, 26), STAMP))
    written = log.events("ticks")
    assert [e.envelope.sequence for e in written] == [1, 3, 4, 5]
    assert len({e.envelope.event_id for e in written}) == len(written)
