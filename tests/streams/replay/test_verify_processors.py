"""`tradecore verify-processors` re-derives a namespace's events in a shadow namespace: identical for a namespace the
processors wrote, and it names the event and exits 1 when the log holds one they would not derive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from deploy.local.stack import Endpoints
from schemas.events import CancelRequested, OrderPlaced, OrderRejected
from schemas.registry import registry_client
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.settings import KafkaSettings
from tests.support.events import envelope, order_rejected
from tests.support.independent import IndependentReader
from tests.support.market_log import session
from tests.support.workers import start_worker


def run_until_quiet(endpoints: Endpoints, prefix: str, names: list[str], topic: str, wanted: int, log: Path) -> int:
    """Run processors until ``topic`` holds at least ``wanted`` events and no more come for a few seconds."""
    reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
    worker = start_worker(endpoints, prefix, names, log)
    try:
        deadline, seen, same = time.monotonic() + 300, -1, 0
        while True:
            assert worker.poll() is None, log.read_text()
            count = len(reader.topic(prefix + topic))
            same = same + 1 if count == seen else 0
            seen = count
            if count >= wanted and same >= 3:
                return count
            assert time.monotonic() < deadline, f"{names} did not finish: {count} events on {topic}"
            time.sleep(1)
    finally:
        worker.terminate()
        worker.wait(60)
        reader.close()


def verify(endpoints: Endpoints, source: str, *names: str) -> subprocess.CompletedProcess[str]:
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    env = {**os.environ, **endpoints.as_env()}
    command = [tradecore, "verify-processors", "--source", source, *names]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_rederived_events_are_identical_and_a_foreign_one_is_named(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    prefix = topics.topic_prefix
    register_all(client, prefix)
    log = session(400)
    decisions = sum(isinstance(e, OrderPlaced | CancelRequested) for e in log)
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(topics)
    for event in log:
        ser = serializers.setdefault(
            event.route().topic, EventSerializer(client, event.route().topic, topic_prefix=prefix)
        )
        producer.produce(ser.topic, key=ser.key(event), value=ser.serialize(event), timestamp=event_time_ms(event))
    assert producer.flush(60) == 0

    # Each stage over a complete input log, as the crash test does (docs/STREAMS.md, "Limit").
    run_until_quiet(endpoints, prefix, ["risk"], "orders.checked", decisions, tmp_path / "risk.log")
    executions = run_until_quiet(endpoints, prefix, ["execution"], "executions", 1, tmp_path / "execution.log")
    done = verify(endpoints, prefix, "risk", "execution")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every derived event is identical" in done.stdout
    assert f"executions: {executions} of {executions} identical" in done.stdout
    assert f"orders.checked: {decisions} of {decisions} identical" in done.stdout

    run_until_quiet(endpoints, prefix, ["executions-by-account", "positions"], "positions", 1, tmp_path / "pos.log")
    done = verify(endpoints, prefix, "executions-by-account", "positions")
    assert done.returncode == 0, done.stdout + done.stderr

    # A decision no processor made: what an audit must catch.
    foreign = order_rejected(
        envelope=envelope(OrderRejected, event_id=uuid.uuid4(), occurred_at=log[-1].envelope.occurred_at),
        order_id="ord-never-placed",
    )
    checked = EventSerializer(client, "orders.checked", topic_prefix=prefix)
    producer.produce(checked.topic, key=checked.key(foreign), value=checked.serialize(foreign))
    assert producer.flush(30) == 0
    done = verify(endpoints, prefix, "risk")
    assert done.returncode == 1
    assert f"orders.checked: {foreign.envelope.event_id} missing from the shadow" in done.stdout
    assert "did not derive the same events" in done.stderr
