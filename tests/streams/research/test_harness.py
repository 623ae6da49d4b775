"""The harness on real quotes, without Kafka: each processor takes its inputs in the order a host takes them on the
finished log, and a replay derives the same events every time."""

from __future__ import annotations

import pytest

from domain.instruments import InstrumentRegistry
from schemas.events import TickIngested
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.research import replay
from streams.research.harness import HarnessError, Pipeline


@pytest.fixture(scope="module")
def ticks() -> list[TickIngested]:
    return replay.file_ticks(market_file(BINANCE_QUOTES), "BTCUSDT", InstrumentRegistry.from_file())


def test_every_processor_takes_its_finished_inputs_in_merge_order(ticks: list[TickIngested]) -> None:
    pipeline = replay.replay(ticks, replay.settings("BTCUSDT", "BT-1", {"ema_fast": "3", "ema_slow": "8"}))
    assert pipeline.events("executions"), "the strategy must trade on this session"
    for processor in replay.processors(replay.settings("BTCUSDT", "BT-1", {})):
        inputs = (*processor.partitioned, *processor.broadcast)
        # One instrument, one account: each input sits in one partition, so every record is ordered against every
        # other — by (event time in ms, topic rank, partition, offset), as streams.host.merge releases a full log.
        merged = sorted(
            (r.timestamp, rank, r.partition, r.offset, topic)
            for rank, topic in enumerate(inputs)
            for records in pipeline.topics[topic]
            for r in records
        )
        assert pipeline.taken[processor.name] == [(t, p, o) for _, _, p, o, t in merged], processor.name


def test_a_replay_derives_the_same_events_again(ticks: list[TickIngested]) -> None:
    chosen = replay.settings("BTCUSDT", "BT-1", {"ema_fast": "5", "ema_slow": "13"})
    first, second = replay.replay(ticks, chosen), replay.replay(ticks, chosen)
    assert first.topics.keys() == second.topics.keys()
    for topic in first.topics:
        assert first.events(topic) == second.events(topic), topic


def test_derived_events_from_an_input_not_declared_to_stop_the_run(ticks: list[TickIngested]) -> None:
    built = replay.processors(replay.settings("BTCUSDT", "BT-1", {"ema_fast": "3", "ema_slow": "8"}))
    pipeline = Pipeline(built, 6)
    for processor in built:
        topics, derived_from = replay.WRITES[processor.name]
        # declare the signals processor as deriving from nothing: its first signal must stop the run
        pipeline.writes(processor, topics, () if processor.name == "signals" else derived_from)
    for tick in ticks:
        pipeline.append("ticks", tick)
    with pytest.raises(HarnessError, match="signals derived events from ticks"):
        pipeline.run()
