"""The in-process harness derives what the real processor hosts derive through Kafka on the same complete log:
every derived topic, event id for event id and Avro body for Avro body.

The harness's whole log (ticks and everything derived from them) is written to a namespace as its producers would
(same partitions, same offsets, event time as the record timestamp), then `tradecore verify-processors`' shadow run
re-runs risk, execution, executions-by-account, positions and signals through Kafka over it — each host reading
the complete log in its own merge order — and compares each output topic hash by hash. The strategy is not
verifiable that way (it writes to `orders`, its own processor's input there), so its orders are compared to those
a StrategyProcessor host would take from `signals`: one input, offset order, checked here by re-deriving them.
"""

from __future__ import annotations

import pytest

from domain.instruments import InstrumentRegistry
from schemas.registry import registry_client
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.kafka import KafkaSettings
from streams.kafka.topics import TopicLayout, cluster_size, ensure_topics
from streams.replay.verify import OUTPUTS, compare, shadow_run
from streams.research import replay
from streams.research.harness import Pipeline

pytestmark = pytest.mark.integration

GRID = [
    {"ema_fast": "3", "ema_slow": "8", "quantity": "0.01"},
    {"ema_fast": "5", "ema_slow": "13", "quantity": "0.01", "indicator": "ema_cross"},
    {"ema_fast": "8", "ema_slow": "21", "quantity": "0.02"},
]


def write(pipeline: Pipeline, settings: KafkaSettings, registry: RegistrySettings, prefix: str) -> None:
    """Every topic of the harness into ``prefix``, record for record at the harness's partition and offset."""
    client = registry_client(registry)
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), prefix)
    register_all(client, prefix)
    producer = kafka.producer(settings)
    for topic, partitions in pipeline.topics.items():
        # A repartition forwards the executions' bytes unchanged, so executions.by-account holds executions' encoding.
        encoder = EventSerializer(
            client, "executions" if topic == "executions.by-account" else topic, topic_prefix=prefix
        )
        for records in partitions:
            for r in records:
                producer.produce(
                    prefix + topic,
                    encoder.serialize(r.event),
                    r.key.encode(),
                    partition=r.partition,
                    timestamp=r.timestamp,
                )
    assert producer.flush(60) == 0


@pytest.mark.parametrize("params", GRID, ids=lambda p: f"ema{p['ema_fast']}-{p['ema_slow']}")
def test_the_harness_derives_what_the_hosts_derive(
    kafka_settings: KafkaSettings,
    registry_settings: RegistrySettings,
    params: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticks = replay.file_ticks(market_file(BINANCE_QUOTES), "BTCUSDT", InstrumentRegistry.from_file())
    chosen = replay.settings("BTCUSDT", "BT-1", params)
    pipeline = replay.replay(ticks, chosen, kafka_settings.partitions)
    assert pipeline.dead_letters == []
    assert pipeline.events("executions"), "the strategy must trade on this session"

    # The hosts' signal settings, as `tradecore backtest` gives them to its worker.
    for name, value in params.items():
        if name.startswith("ema_"):
            monkeypatch.setenv(f"TRADECORE_SIGNALS_{name.upper()}", value)
    source, shadow = kafka_settings.topic_prefix + "log.", kafka_settings.topic_prefix + "shadow."
    write(pipeline, kafka_settings, registry_settings, source)
    client = registry_client(registry_settings)
    shadow_run(list(OUTPUTS), kafka_settings, client, source, shadow, progress=lambda done, total: None, timeout_s=300)
    for name, topic in OUTPUTS.items():
        result = compare(kafka_settings, client, source, shadow, topic)
        assert result.ok, f"{name}: {result}"
        assert result.identical == result.source == len(pipeline.events(topic)) > 0, (name, result)

    # The strategy: one input, taken in offset order; its orders again from the same signals, one by one.
    [strategy] = [p for p in replay.processors(chosen) if p.name == "strategy"]
    again = [o for s in pipeline.events("signals") for o in strategy.handle("signals", s)]
    assert again == pipeline.events("orders")
