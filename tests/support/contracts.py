"""One contract per write-side port (``commands.gateway``), run against every implementation: the in-memory fakes in
the unit lane, Postgres and Kafka in the integration lane (eventsourcing's pattern: a subclass per backend says
only how to get one; the tests are here, once).

A subclass implements ``run(scenario)``: build the implementation inside the scenario's event loop, run it, clean up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from commands import decide
from commands.decide import Stamp
from commands.gateway import Appended, Claim, CommandStore, Earlier, EventLog
from commands.models import PlaceOrder
from commands.refs import OrderRef
from schemas import avsc, codec
from schemas.batch import nodes
from schemas.events import OrderPlaced, OrderType, TickIngested
from tests.schemas.batch import reference
from tests.support.market_log import QUOTES, quote_tick

STAMP = Stamp(at=datetime(2021, 1, 8, tzinfo=UTC), correlation_id="contract")


def placement(account: str, client_order_id: str, quantity: str = "0.5") -> tuple[Claim, OrderPlaced]:
    """A limit buy of BTCUSDT as the gateway would claim and append it."""
    command = PlaceOrder.model_validate(
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
    event = decide.place_order(command, STAMP)
    ref = OrderRef(event.order_id, account, "BTCUSDT", OrderType.LIMIT)
    return Claim(ref, client_order_id, f"hash-{quantity}"), event


class Boom(Exception):
    """What a scenario raises to end its unit or placement abnormally."""


class CommandStoreContract:
    """What the gateway relies on from a ``CommandStore`` and its units."""

    def run(self, scenario: Callable[[CommandStore], Awaitable[Any]]) -> Any:
        raise NotImplementedError

    @staticmethod
    def account() -> str:
        return f"acc-{uuid.uuid4().hex[:8]}"

    def test_a_claim_is_taken_once_and_a_repeat_answers_what_the_first_recorded(self) -> None:
        claim, _ = placement(self.account(), "c-1")
        where = Appended("orders", 3, 41)

        async def scenario(store: CommandStore) -> tuple[list[Earlier | None], list[Earlier | None]]:
            async with store.placing() as placing:
                first = await placing.claim_orders([claim])
                await placing.record_placed([(claim.order.order_id, where)])
            async with store.placing() as placing:
                again = await placing.claim_orders([claim])
            return first, again

        first, [again] = self.run(scenario)
        assert first == [None]
        assert again is not None
        assert again.request_hash == claim.request_hash
        assert (again.placed.order_id, again.placed.appended, again.placed.repeated) == (
            claim.order.order_id,
            where,
            True,
        )

    def test_claims_of_a_batch_are_answered_each_in_order(self) -> None:
        account = self.account()
        old, _ = placement(account, "old")
        new, _ = placement(account, "new")

        async def scenario(store: CommandStore) -> list[Earlier | None]:
            async with store.placing() as placing:
                await placing.claim_orders([old])
                await placing.record_placed([(old.order.order_id, Appended("orders", 0, 7))])
            async with store.placing() as placing:
                return await placing.claim_orders([new, old])

        fresh, earlier = self.run(scenario)
        assert fresh is None
        assert earlier is not None and earlier.placed.order_id == old.order.order_id

    def test_a_unit_that_raises_keeps_its_numbers(self) -> None:
        """What a unit numbered may be in the log however it ends: its numbers are never handed out again."""
        aggregate = f"X-{uuid.uuid4().hex[:8]}"

        async def scenario(store: CommandStore) -> int:
            with pytest.raises(Boom):
                async with store.unit() as unit:
                    await unit.next_sequence("ticks", aggregate, 5)
                    raise Boom
            async with store.unit() as unit:
                return await unit.next_sequence("ticks", aggregate)

        assert self.run(scenario) == 6

    def test_a_stream_numbered_by_a_unit_waits_for_it_to_end(self) -> None:
        """Two commands on one order at once: the second is numbered once the first has appended, so the order's
        events land in the order of their numbers."""
        aggregate = f"ORD-{uuid.uuid4().hex[:8]}"

        async def scenario(store: CommandStore) -> tuple[list[str], list[int]]:
            taken = asyncio.Event()
            seen: list[str] = []

            async def first() -> int:
                async with store.unit() as unit:
                    number = await unit.next_sequence("orders", aggregate)
                    taken.set()
                    await asyncio.sleep(0.2)  # appending; the other comes meanwhile
                    seen.append("first ends")
                return number

            async def second() -> int:
                await taken.wait()
                async with store.unit() as unit:
                    number = await unit.next_sequence("orders", aggregate)
                    seen.append("second numbered")
                return number

            return seen, list(await asyncio.gather(first(), second()))

        seen, numbers = self.run(scenario)
        assert seen == ["first ends", "second numbered"]
        assert numbers == [1, 2]

    def test_an_unconfirmed_claim_is_taken_again_by_its_own_request_only(self) -> None:
        """A claim whose placement ended without a location (Kafka did not confirm its OrderPlaced, or the placement
        raised) may be in the log: it is no order commands act on yet; the same request takes it again (the gateway
        appends it again), another request with its client order id is answered with the claim's own request, and
        once a retry records where it landed, repeats are answered from there."""
        account = self.account()
        claim, _ = placement(account, "c-unconfirmed")
        other, _ = placement(account, "c-unconfirmed", quantity="0.7")
        where = Appended("orders", 2, 9)

        Outcomes = list[Earlier | None]

        async def scenario(store: CommandStore) -> tuple[Outcomes, OrderRef | None, Outcomes, Outcomes, Outcomes, int]:
            with pytest.raises(Boom):
                async with store.placing() as placing:
                    first = await placing.claim_orders([claim])
                    raise Boom
            async with store.unit() as unit:
                unconfirmed = await unit.order(claim.order.order_id)
            async with store.placing() as placing:
                by_other = await placing.claim_orders([other])
            async with store.placing() as placing:
                retried = await placing.claim_orders([claim])
                await placing.record_placed([(claim.order.order_id, where)])
            async with store.placing() as placing:
                repeated = await placing.claim_orders([claim])
            async with store.unit() as unit:
                sequence = await unit.next_sequence("orders", claim.order.order_id)
            return first, unconfirmed, by_other, retried, repeated, sequence

        first, unconfirmed, [by_other], retried, [repeated], sequence = self.run(scenario)
        assert first == [None] and retried == [None]
        assert unconfirmed is None, "no order to cancel or amend until its placement is confirmed"
        assert by_other is not None and by_other.request_hash == claim.request_hash
        assert repeated is not None and repeated.placed.appended == where
        assert sequence == 2, "the order's stream goes on from its OrderPlaced, appended again as 1"

    @pytest.mark.parametrize("earlier", ["none", "unconfirmed"])
    def test_a_repeat_of_an_order_in_flight_waits_for_its_placement_and_answers_where_it_landed(
        self, earlier: str
    ) -> None:
        """Two placements of one order at once (two API workers, a client's quick retry): one appends, the other
        waits for it to end and answers from where it landed — whether the order is new or an unconfirmed one
        being retried."""
        claim, _ = placement(self.account(), f"c-raced-{earlier}")
        where = Appended("orders", 4, 17)

        async def scenario(store: CommandStore) -> tuple[list[Earlier | None], list[Earlier | None]]:
            if earlier == "unconfirmed":
                async with store.placing() as placing:
                    await placing.claim_orders([claim])
            taken = asyncio.Event()

            async def first() -> list[Earlier | None]:
                async with store.placing() as placing:
                    outcome = await placing.claim_orders([claim])
                    taken.set()
                    await asyncio.sleep(0.2)  # appending; the other comes meanwhile
                    await placing.record_placed([(claim.order.order_id, where)])
                return outcome

            async def second() -> list[Earlier | None]:
                await taken.wait()
                async with store.placing() as placing:
                    return await placing.claim_orders([claim])

            one, other = await asyncio.gather(first(), second())
            return one, other

        one, [other] = self.run(scenario)
        assert one == [None]
        assert other is not None and other.placed.appended == where, "the second appends nothing"

    def test_a_placed_order_is_known_and_its_stream_continues_after_order_placed(self) -> None:
        claim, _ = placement(self.account(), "c-known")

        async def scenario(store: CommandStore) -> tuple[OrderRef | None, OrderRef | None, list[int]]:
            async with store.placing() as placing:
                await placing.claim_orders([claim])
                await placing.record_placed([(claim.order.order_id, Appended("orders", 1, 5))])
            async with store.unit() as unit:
                order = await unit.order(claim.order.order_id)
                unknown = await unit.order(str(uuid.uuid4()))
                sequences = [await unit.next_sequence("orders", claim.order.order_id) for _ in range(2)]
            return order, unknown, sequences

        order, unknown, sequences = self.run(scenario)
        assert order == claim.order
        assert unknown is None
        assert sequences == [2, 3]

    def test_sequences_are_reserved_in_blocks_per_topic_and_aggregate(self) -> None:
        instrument = f"SYM-{uuid.uuid4().hex[:6]}"

        async def scenario(store: CommandStore) -> list[int]:
            async with store.unit() as unit:
                first = await unit.next_sequence("ticks", instrument, 3)
            async with store.unit() as unit:
                return [
                    first,
                    await unit.next_sequence("ticks", instrument, 2),
                    await unit.next_sequence("ticks", instrument),
                    await unit.next_sequence("orders", instrument),
                ]

        assert self.run(scenario) == [1, 4, 6, 1]


class EventLogContract:
    """What the gateway relies on from an ``EventLog``."""

    prefix = ""

    def run(self, scenario: Callable[[EventLog], Awaitable[Any]]) -> Any:
        raise NotImplementedError

    def test_nothing_to_append_answers_nothing(self) -> None:
        async def scenario(log: EventLog) -> list[Appended | Exception]:
            return await log.append([])

        assert self.run(scenario) == []

    def test_each_event_is_answered_in_order_where_it_landed(self) -> None:
        account, other = f"acc-{uuid.uuid4().hex[:8]}", f"acc-{uuid.uuid4().hex[:8]}"
        events = [placement(a, f"c-{i}")[1] for i, a in enumerate([account, account, other, account])]

        async def scenario(log: EventLog) -> list[Appended | Exception]:
            return await log.append(events, [{"request": str(i)} for i in range(len(events))])

        answers = self.run(scenario)
        assert all(isinstance(a, Appended) for a in answers), answers
        landed = [a for a in answers if isinstance(a, Appended)]
        assert {a.topic for a in landed} == {f"{self.prefix}orders"}
        mine = [landed[i] for i in (0, 1, 3)]
        assert len({a.partition for a in mine}) == 1, "one account, one partition"
        assert [a.offset for a in mine] == sorted(a.offset for a in mine) and len({a.offset for a in mine}) == 3

    def test_a_later_append_lands_after_an_earlier_one(self) -> None:
        account = f"acc-{uuid.uuid4().hex[:8]}"

        async def scenario(log: EventLog) -> list[Appended | Exception]:
            first = await log.append([placement(account, "early")[1]])
            second = await log.append([placement(account, "late")[1]])
            return first + second

        early, late = self.run(scenario)
        assert isinstance(early, Appended) and isinstance(late, Appended)
        assert (late.topic, late.partition) == (early.topic, early.partition)
        assert late.offset > early.offset

    def test_a_load_is_all_in_the_log_before_what_is_appended_next(self) -> None:
        ticks = recorded_ticks(7)  # of one instrument: one partition, this test's alone

        async def scenario(log: EventLog) -> list[Appended | Exception]:
            async with log.load(TickIngested) as send:
                await send(lambda: tick_frame(ticks[:0]))
                await send(lambda: tick_frame(ticks[:4]))
                await send(lambda: tick_frame(ticks[4:6]))
            return await log.append(ticks[6:])

        [after] = self.run(scenario)
        assert isinstance(after, Appended) and after.offset == 6, "the six loaded ticks came first"


def recorded_ticks(count: int) -> list[TickIngested]:
    """The first ``count`` recorded BTCUSDT quotes as ticks 1..count."""
    quotes = pl.read_parquet(QUOTES).sort("timestamp").head(count).to_dicts()
    return [quote_tick(quote, quote["timestamp"], sequence) for sequence, quote in enumerate(quotes, start=1)]


def tick_frame(ticks: Sequence[TickIngested]) -> pl.DataFrame:
    """``ticks`` as the batch codec's columns."""
    node = nodes.parse(avsc.expanded("TickIngested"))
    return reference.frame(node, [codec.to_avro(t) for t in ticks])
