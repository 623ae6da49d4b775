"""A replay with the model derives the signals byte for byte; with another model file, the audit names them.

A slice of real Binance ticks goes through `tradecore worker signals` with a model; `tradecore verify-processors`
re-derives the signals in a shadow namespace and compares each event's Avro body by SHA-256 — with the same file,
every one is identical; with a different model at the same path, the model's signals differ (another id).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy import launch
from deploy.local.stack import Endpoints
from schemas.settings import RegistrySettings
from streams.kafka import FinalCommits
from streams.kafka.registry import registry_client
from streams.replay.verify import committed_offsets, input_ends
from streams.settings import KafkaSettings
from tests.domain.signals.market import binance_btcusdt
from tests.streams.models.support import model_file
from tests.support.independent import IndependentReader
from tests.support.log import append

pytestmark = pytest.mark.integration

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def model_env(path: Path) -> dict[str, str]:
    return {"TRADECORE_SIGNALS_MODEL": str(path), "TRADECORE_SIGNALS_BAR_INTERVAL": "PT0.1S"}


def verify(endpoints: Endpoints, prefix: str, model: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **endpoints.as_env(), **model_env(model)}
    command = [TRADECORE, "verify-processors", "--source", prefix, "signals"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_a_replay_with_the_same_model_file_gives_byte_identical_signals(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    prefix = topics.topic_prefix
    client = registry_client(registry_settings)
    model = model_file(tmp_path)
    model_id = hashlib.sha256(model.read_bytes()).hexdigest()
    append(topics, client, binance_btcusdt().ticks[:1200])

    ends = input_ends(topics, client, prefix, ("ticks",))
    env = {**endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix, **model_env(model)}
    worker = launch.start("worker", ["worker", "signals"], tmp_path / "worker.log", env).process
    try:
        with FinalCommits(topics) as commits:
            deadline = time.monotonic() + 300
            while committed_offsets(commits, prefix + "signals", ends) < sum(ends.values()):
                assert worker.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the signals processor did not consume the ticks in time"
                time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(60)

    reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
    signals = reader.topic(prefix + "signals")
    reader.close()
    scored = [s for s in signals if s["indicator"].startswith("model(")]
    assert len(scored) > 50
    assert {s["indicator"] for s in scored} == {f"model({model_id})"}
    assert all(0.0 <= s["values"]["score"] <= 1.0 for s in scored)

    same = verify(endpoints, prefix, model)
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"signals: {len(signals)} of {len(signals)} identical" in same.stdout

    (tmp_path / "other").mkdir()
    model.write_bytes(model_file(tmp_path / "other", rows=120).read_bytes())  # retrained, same path
    changed = verify(endpoints, prefix, model)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "did not derive the same events" in changed.stderr
