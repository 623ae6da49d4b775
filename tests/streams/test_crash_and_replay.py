"""Risk and execution, SIGKILLed again and again over 20,000 orders on real quotes, leave exactly one outcome per
input; a clean replay of the same log into another namespace derives the very same events."""

from __future__ import annotations

import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from deploy.local.stack import Endpoints
from schemas.events import CancelRequested, Event, OrderAccepted, OrderPlaced, TimeInForce
from schemas.serde import EventDeserializer
from schemas.settings import RegistrySettings
from streams import kafka
from streams.kafka.registry import registry_client
from streams.kafka.topics import TopicLayout, ensure_topics
from streams.settings import KafkaSettings
from tests.support.log import append
from tests.support.market_log import session
from tests.support.stack import drop_namespace
from tests.support.workers import run_with_kills, start_worker

pytestmark = pytest.mark.integration

ORDERS = 20_000


class Tail:
    """Follows a topic read_committed, accumulating decoded events."""

    def __init__(self, settings: KafkaSettings, decoder: EventDeserializer, topic: str) -> None:
        self.events: list[Event] = []
        self._decoder = decoder
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": f"tail-{uuid.uuid4()}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        meta = self._consumer.list_topics(topic, timeout=10).topics[topic]
        self._consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])

    def poll(self) -> int:
        while batch := self._consumer.consume(5000, 0.5):
            self.events += [self._decoder.deserialize(m.value()) for m in batch if m.error() is None]
        return len(self.events)

    def close(self) -> None:
        self._consumer.close()


def quiet(tail: Tail, needed: int, checks: int = 4) -> Callable[[], bool]:
    """Done when ``needed`` events are there and no more arrive for a few checks in a row."""
    seen = {"count": -1, "same": 0}

    def done() -> bool:
        count = tail.poll()
        seen["same"] = seen["same"] + 1 if count == seen["count"] else 0
        seen["count"] = count
        return count >= needed and seen["same"] >= checks

    return done


def by_id(events: list[Event]) -> dict[Any, Event]:
    return {e.envelope.event_id: e for e in events}


def test_kill_risk_and_execution_repeatedly_then_replay(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    log = session(ORDERS)
    placed = [e for e in log if isinstance(e, OrderPlaced)]
    cancels = [e for e in log if isinstance(e, CancelRequested)]
    append(topics, client, log)

    checked = Tail(topics, EventDeserializer(client, "orders.checked", topic_prefix=prefix), prefix + "orders.checked")
    executed = Tail(topics, EventDeserializer(client, "executions", topic_prefix=prefix), prefix + "executions")
    # Each stage is killed while it works through a complete input log. (Where one feeds the other live, a rebuild
    # follows the order live processing took: tests/streams/host/test_journal.py.)
    checked_done, executed_done = quiet(checked, len(placed) + len(cancels)), quiet(executed, 1)
    landed = run_with_kills(
        lambda: start_worker(endpoints, prefix, ["risk"], tmp_path / "worker.log"),
        checked_done,
        kills=4,
        interval_s=(4.0, 8.0),
    )
    landed += run_with_kills(
        lambda: start_worker(endpoints, prefix, ["execution"], tmp_path / "worker.log"),
        executed_done,
        kills=4,
        interval_s=(4.0, 8.0),
        seed=8,
    )
    assert landed >= 6, "most kills must hit a working process"
    rebuilt = re.findall(r"(risk|execution): rebuilt state from (\d+) records", (tmp_path / "worker.log").read_text())
    assert any(int(n) > 0 for _, n in rebuilt), "some kills must land after commits, so state is rebuilt from the log"
    executed.poll()

    # Exactly one decision per order and one forwarded cancel per request: nothing lost, nothing twice.
    decisions = Counter(e.order_id for e in checked.events if type(e).__name__ in ("OrderAccepted", "OrderRejected"))  # type: ignore[attr-defined]
    assert set(decisions) == {e.order_id for e in placed}
    assert set(decisions.values()) == {1}
    assert sum(type(e).__name__ == "CancelAccepted" for e in checked.events) == len(cancels)
    for events in (checked.events, executed.events):
        assert len(by_id(events)) == len(events)  # no event twice
        streams: dict[str, list[int]] = defaultdict(list)
        for e in events:
            streams[e.envelope.aggregate_id].append(e.envelope.sequence)
        assert all(sorted(s) == list(range(1, len(s) + 1)) for s in streams.values())  # gap-free, no repeats

    # What the venue did adds up for every accepted order.
    accepted = {e.order_id: e for e in checked.events if isinstance(e, OrderAccepted)}
    filled: dict[str, Decimal] = defaultdict(Decimal)
    closed: dict[str, Decimal] = defaultdict(Decimal)
    for e in executed.events:
        name = type(e).__name__
        if name == "OrderFilled":
            filled[e.order_id] += e.fill_quantity  # type: ignore[attr-defined]
        elif name in ("OrderExpired", "OrderCancelled"):
            closed[e.order_id] += getattr(e, "expired_quantity", None) or e.cancelled_quantity
    assert len({e.fill_id for e in executed.events if type(e).__name__ == "OrderFilled"}) == sum(  # type: ignore[attr-defined]
        type(e).__name__ == "OrderFilled" for e in executed.events
    )
    assert filled, "the session must trade"
    for order_id, order in accepted.items():
        assert filled[order_id] + closed[order_id] <= order.quantity
        if order.time_in_force is not TimeInForce.GTC:
            assert filled[order_id] + closed[order_id] == order.quantity, order_id

    # Determinism: replaying the same log from offset 0 into a namespace of its own derives the very events the
    # killed runs did: each stage's inputs were all in the log before its killed run began.
    replayed_checked, replayed_executed = replay_into(
        topics, client, endpoints, prefix, tmp_path, len(checked.events), len(executed.events)
    )
    assert replayed_checked == by_id(checked.events)
    assert replayed_executed == by_id(executed.events)
    for tail in (checked, executed):
        tail.close()


def replay_into(
    topics: KafkaSettings,
    client: Any,
    endpoints: Endpoints,
    prefix: str,
    tmp_path: Path,
    decisions: int,
    executions: int,
) -> tuple[dict[Any, Event], dict[Any, Event]]:
    replay = f"replay-{uuid.uuid4().hex[:8]}."
    ensure_topics(kafka.admin(topics), TopicLayout.for_cluster(1, topics.partitions), replay)
    checked = Tail(topics, EventDeserializer(client, "orders.checked", topic_prefix=replay), replay + "orders.checked")
    executed = Tail(topics, EventDeserializer(client, "executions", topic_prefix=replay), replay + "executions")
    checked_done, executed_done = quiet(checked, decisions), quiet(executed, 1)
    run_with_kills(
        lambda: start_worker(
            endpoints,
            prefix,
            ["risk", "execution"],
            tmp_path / f"{replay}log",
            "--input-prefix",
            prefix,
            "--output-prefix",
            replay,
        ),
        lambda: all([checked_done(), executed_done()]),  # both tails polled each time: each counts its quiet checks
        kills=0,
    )
    found = by_id(checked.events), by_id(executed.events)
    checked.close()
    executed.close()
    drop_namespace(topics.bootstrap_servers, replay)
    return found
