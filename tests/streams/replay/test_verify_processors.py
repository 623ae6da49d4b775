"""`tradecore verify-processors` re-derives a namespace's events in a shadow namespace: identical for a namespace the
processors wrote, and it names the event and exits 1 when the log holds one they would not derive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from deploy.local.stack import Endpoints
from schemas.events import CancelRequested, OrderPlaced, OrderRejected
from schemas.settings import RegistrySettings
from streams.kafka import FinalCommits
from streams.kafka.registry import registry_client
from streams.processors import ProcessorSettings
from streams.replay.verify import committed_offsets, input_ends
from streams.settings import KafkaSettings
from streams.worker import PROCESSORS
from tests.support.events import envelope, order_rejected
from tests.support.independent import IndependentReader
from tests.support.log import append
from tests.support.market_log import session
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration


def run_until_consumed(endpoints: Endpoints, settings: KafkaSettings, names: list[str], log: Path) -> None:
    """Run processors until each has committed every record now in its inputs (as the shadow run is judged)."""
    client = registry_client(RegistrySettings(url=endpoints.schema_registry_url))
    prefix = settings.topic_prefix
    groups = {
        prefix + name: input_ends(settings, client, prefix, PROCESSORS[name](ProcessorSettings()).partitioned)
        for name in names
    }
    worker = start_worker(endpoints, prefix, names, log)
    try:
        with FinalCommits(settings) as commits:
            deadline = time.monotonic() + 300
            while any(committed_offsets(commits, g, ends) < sum(ends.values()) for g, ends in groups.items()):
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"{names} did not consume their inputs in time"
                time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(60)


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
    log = session(400)
    decisions = sum(isinstance(e, OrderPlaced | CancelRequested) for e in log)
    append(topics, client, log)

    # Each stage over a complete input log, as the crash test does (docs/STREAMS.md, "Limit").
    run_until_consumed(endpoints, topics, ["risk"], tmp_path / "risk.log")
    run_until_consumed(endpoints, topics, ["execution"], tmp_path / "execution.log")
    reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
    checked, executions = (len(reader.topic(prefix + t)) for t in ("orders.checked", "executions"))
    reader.close()
    assert checked == decisions and executions > 0
    done = verify(endpoints, prefix, "risk", "execution")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every derived event is identical" in done.stdout
    assert f"executions: {executions} of {executions} identical" in done.stdout
    assert f"orders.checked: {decisions} of {decisions} identical" in done.stdout

    run_until_consumed(endpoints, topics, ["executions-by-account"], tmp_path / "by-account.log")
    run_until_consumed(endpoints, topics, ["positions"], tmp_path / "positions.log")
    done = verify(endpoints, prefix, "executions-by-account", "positions")
    assert done.returncode == 0, done.stdout + done.stderr

    # A decision no processor made: what an audit must catch.
    foreign = order_rejected(
        envelope=envelope(OrderRejected, event_id=uuid.uuid4(), occurred_at=log[-1].envelope.occurred_at),
        order_id="ord-never-placed",
    )
    append(topics, client, [foreign])
    done = verify(endpoints, prefix, "risk")
    assert done.returncode == 1
    assert f"orders.checked: {foreign.envelope.event_id} missing from the shadow" in done.stdout
    assert "did not derive the same events" in done.stderr
