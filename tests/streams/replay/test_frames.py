"""Replay frames from the batch decoder hold what the per-record path's rows hold, in the same merged order."""

from __future__ import annotations

import random

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import avsc
from schemas.codec import to_avro
from schemas.events import Event, events_on
from streams.host.merge import Merger, Stamped
from streams.kafka.logreader import RawRecord
from streams.replay.frames import FrameDecoder, TimeMerge
from streams.replay.reader import Record
from streams.replay.rows import columns, frame, row
from tests.schemas.batch.reference import SCHEMA_IDS, framed, writers
from tests.support import events as build
from tests.support.properties import example_count


def _value(event: Event) -> bytes:
    name = type(event).__name__
    return framed(avsc.expanded(name), to_avro(event), SCHEMA_IDS[name])


def _per_record(
    topic: str, raws: list[RawRecord], decoded: list[Event | None], errors: list[str | None]
) -> pl.DataFrame:
    """The reference: rows built record by record, as replay wrote them before batch decoding."""
    rows = [
        row(Record(topic, r.partition, r.offset, r.timestamp_ms, r.key.decode(), e, err, r.value))
        for r, e, err in zip(raws, decoded, errors, strict=True)
    ]
    return frame(rows, columns(topic))


def _events_of(topic: str) -> list[Event]:
    names = {cls.__name__ for cls in events_on(topic)}
    return [e for e in build.every_event() + build.edge_cases() if type(e).__name__ in names]


def test_every_event_of_every_topic_makes_the_per_record_row() -> None:
    for topic in ("orders", "orders.checked", "executions", "ticks", "signals", "positions"):
        found = _events_of(topic)
        raws = [
            RawRecord(topic, i % 3, i, 1_600_000_000_000 + i, f"k{i}".encode(), _value(e)) for i, e in enumerate(found)
        ]
        got = FrameDecoder(topic, writers()).frame(raws)
        assert got.equals(_per_record(topic, raws, list(found), [None] * len(found))), topic


def test_a_malformed_record_is_a_row_with_the_reason_and_its_bytes_and_the_rest_decode() -> None:
    fills = [build.order_filled(), build.order_filled(fill_id="f-2")]
    values = [_value(fills[0]), _value(fills[0])[:-3], _value(fills[1])]
    raws = [RawRecord("executions", 0, i, 1_600_000_000_000, b"k", v) for i, v in enumerate(values)]
    got = FrameDecoder("executions", writers()).frame(raws)
    assert got["fill_id"].to_list() == [fills[0].fill_id, None, "f-2"]
    assert got["error"].is_null().to_list() == [True, False, True]
    assert "OrderFilled" in got["error"][1]
    assert got["raw_value"][1] is not None


@settings(max_examples=example_count(40), deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 50), max_size=12), min_size=1, max_size=4),
    st.integers(1, 7),
    st.randoms(use_true_random=False),
)
def test_the_time_merge_orders_rows_as_the_record_merger_does(
    stamps: list[list[int]], batch: int, rng: random.Random
) -> None:
    """Timestamps that go back within a partition too; batches of any size, partitions interleaved at random."""
    tick = build.tick_ingested()
    raws = [
        RawRecord("ticks", p, o, t, b"BTCUSDT", _value(tick)) for p, ts in enumerate(stamps) for o, t in enumerate(ts)
    ]
    merger: Merger[RawRecord] = Merger({(0, p) for p in range(len(stamps))})
    for raw in raws:
        merger.add(Stamped(raw.timestamp_ms, 0, raw.partition, raw.offset, raw))
    expected = [(s.partition, s.offset) for s in merger.release(lambda _source: True)]

    # Fetched as a reader fetches: each partition in offset order, partitions interleaved, in batches.
    queues = {p: [r for r in raws if r.partition == p] for p in range(len(stamps))}
    merge = TimeMerge(queues)
    decoder = FrameDecoder("ticks", writers())
    out: list[pl.DataFrame] = []
    while any(queues.values()):
        fetched = []
        for _ in range(batch):
            open_ = [p for p, q in queues.items() if q]
            if not open_:
                break
            fetched.append(queues[rng.choice(open_)].pop(0))
        merge.add(decoder.frame(fetched))
        released = merge.release({p: not q for p, q in queues.items()})
        if released is not None:
            out.append(released)
    rest = merge.release(dict.fromkeys(queues, True))
    if rest is not None:
        out.append(rest)
    got = [(p, o) for f in out for p, o in zip(f["partition"].to_list(), f["offset"].to_list(), strict=True)]
    assert got == expected
