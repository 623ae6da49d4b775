"""Rows built as columns from the batch decoder's frames say what the per-record path's rows said."""

from __future__ import annotations

import json

import polars as pl

from projections.projectors.base import payload, records
from projections.projectors.columns import SOURCE
from projections.projectors.columns import payload as payload_column
from schemas import avsc
from schemas.batch import INDEX, BatchDecoder
from schemas.codec import to_avro
from schemas.events import EVENT_TYPES, Event
from tests.schemas.batch.reference import SCHEMA_IDS, framed, read, writers
from tests.support import events as build


def _decoded(found: list[Event]) -> tuple[dict[str, pl.DataFrame], list[dict[str, object]]]:
    """The batch decoder's frames (with source columns, as the runner adds them) and fastavro's dicts."""
    values = [framed(avsc.expanded(type(e).__name__), to_avro(e), SCHEMA_IDS[type(e).__name__]) for e in found]
    schemas = [avsc.expanded(type(e).__name__) for e in found]
    frames = BatchDecoder(writers(), EVENT_TYPES.values()).decode(values).frames
    placed = {
        name: frame.with_columns(
            pl.lit("t").alias("topic"), pl.lit(0, pl.Int32).alias("partition"), pl.col(INDEX).alias("offset")
        )
        for name, frame in frames.items()
    }
    return placed, [read(s, s, v) for s, v in zip(schemas, values, strict=True)]


def test_the_json_payload_of_every_event_is_the_per_record_payload() -> None:
    found = build.every_event() + build.edge_cases()
    frames, expected = _decoded(found)
    got: dict[int, object] = {}
    for name, frame in frames.items():
        if name == "SignalGenerated":  # its map is folded record by record, never appended
            continue
        texts = frame.select(pl.col(INDEX), payload_column(frame).alias("p"))
        got.update({i: json.loads(t) for i, t in texts.iter_rows()})
    assert got, "some events were compared"
    for i, text in got.items():
        assert text == json.loads(json.dumps(payload(expected[i]))), type(found[i]).__name__


def test_folds_read_every_field_as_the_per_record_deserializer_gives_it() -> None:
    found = build.every_event() + build.edge_cases()
    frames, expected = _decoded(found)
    read_back = records(frames)
    assert [r.offset for r in read_back] == list(range(len(found)))  # batch order
    for record, event in zip(read_back, expected, strict=True):
        got = {k: v for k, v in record.event.items() if k not in (INDEX, *SOURCE)}
        envelope = dict(event["envelope"])  # type: ignore[call-overload]
        envelope["event_id"] = str(envelope["event_id"])  # the one uuid: text in columns, as every fold uses it
        assert got == {**event, "envelope": envelope}, record.type
