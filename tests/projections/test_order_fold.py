"""The orders read model, folded a batch at a time as columns, equals the simplest fold of the order's events in
causal order (tests/projections/folds.py), whichever way the three topics interleave and the batches are cut."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from projections import tables
from projections.projectors import order_fold
from projections.projectors.base import frame_schema
from schemas import avsc
from schemas.batch import INDEX, BatchDecoder
from schemas.codec import to_avro
from schemas.events import EVENT_TYPES, Event
from tests.projections.folds import orders as reference
from tests.schemas.batch.reference import SCHEMA_IDS, framed, read, writers
from tests.support import events as build
from tests.support.properties import example_count

Placed = tuple[str, int, Event]  # topic, offset in it, event


def _history(n: int, ending: str) -> dict[str, list[Event]]:
    """Order ``n``'s events per topic, each topic in log order, in event time order across topics."""
    clock = iter(build.OCCURRED_AT + timedelta(seconds=n * 100 + i) for i in range(100))
    ids = {"order_id": f"ord-{n}", "client_order_id": f"cli-{n}", "account_id": f"acc-{n % 3}"}

    def at(make: Any, **fields: Any) -> Event:
        cls = type(make())
        known = {field.name for field in dataclasses.fields(cls)}
        event: Event = make(**{k: v for k, v in ids.items() if k in known}, **fields)
        return dataclasses.replace(event, envelope=build.envelope(cls, occurred_at=next(clock)))

    placed = at(build.order_placed, quantity=Decimal("1"))
    if ending == "rejected":
        return {"orders": [placed], "orders.checked": [at(build.order_rejected)], "executions": []}
    if ending == "placed-twice":  # a client retried a placement Kafka had not confirmed; both landed
        again = at(build.order_placed, quantity=Decimal("1"))
        filled = at(build.order_filled, cumulative_quantity=Decimal("1"), leaves_quantity=Decimal(0), is_final=True)
        return {
            "orders": [placed, again],
            "orders.checked": [at(build.order_accepted, quantity=Decimal("1"))],
            "executions": [filled],
        }
    requests = [placed, at(build.amend_requested), at(build.cancel_requested)]
    decisions = [at(build.order_accepted, quantity=Decimal("1")), at(build.amend_accepted)]
    venue = [at(build.order_filled, cumulative_quantity=Decimal("0.2"), leaves_quantity=Decimal("0.8"))]
    if ending != "filled-unamended":
        venue.append(at(build.order_amended, quantity=Decimal("2"), leaves_quantity=Decimal("1.8")))
    venue.append(
        {
            "filled": lambda: at(
                build.order_filled, cumulative_quantity=Decimal("2"), leaves_quantity=Decimal(0), is_final=True
            ),
            "filled-unamended": lambda: at(
                build.order_filled, cumulative_quantity=Decimal("1"), leaves_quantity=Decimal(0), is_final=True
            ),
            "cancelled": lambda: at(build.order_cancelled),
            "expired": lambda: at(build.order_expired),
            "working": lambda: at(build.amend_rejected),
        }[ending]()
    )
    return {"orders": requests, "orders.checked": decisions, "executions": venue}


DECODER = BatchDecoder(writers(), EVENT_TYPES.values())
ENDINGS = ("rejected", "filled", "filled-unamended", "cancelled", "expired", "working", "placed-twice")


@st.composite
def logs(draw: st.DrawFn) -> list[list[Placed]]:
    """Every ending's order, the topics interleaved at random (each in log order), cut into batches at random."""
    topics: dict[str, list[Event]] = {"orders": [], "orders.checked": [], "executions": []}
    for n, ending in enumerate(ENDINGS):
        for topic, found in _history(n, ending).items():
            topics[topic] += found
    left = {topic: list(enumerate(found)) for topic, found in topics.items()}
    log: list[Placed] = []
    while any(left.values()):
        topic = draw(st.sampled_from(sorted(t for t, found in left.items() if found)))
        offset, event = left[topic].pop(0)
        log.append((topic, offset, event))
    cuts = sorted(draw(st.sets(st.integers(1, len(log) - 1), max_size=6)))
    return [log[a:b] for a, b in zip([0, *cuts], [*cuts, len(log)], strict=True)]


def _frames(batch: list[Placed]) -> dict[str, pl.DataFrame]:
    """A batch as the runner hands it to a projector: the decoder's frames with where each row came from."""
    values = [framed(avsc.expanded(type(e).__name__), to_avro(e), SCHEMA_IDS[type(e).__name__]) for _, _, e in batch]
    frames = DECODER.decode(values).frames
    topic = pl.col(INDEX).map_elements(lambda i: batch[i][0], return_dtype=pl.String)
    offset = pl.col(INDEX).map_elements(lambda i: batch[i][1], return_dtype=pl.Int64)
    return {
        name: frame.with_columns(topic.alias("topic"), pl.lit(0, pl.Int32).alias("partition"), offset.alias("offset"))
        for name, frame in frames.items()
    }


class _Log:
    """The whole log as tests/projections/folds.py reads it: (topic, partition, offset, fastavro's dict)."""

    def __init__(self, batches: list[list[Placed]]) -> None:
        self.records = []
        for topic, offset, event in (placed for batch in batches for placed in batch):
            schema = avsc.expanded(type(event).__name__)
            value = framed(schema, to_avro(event), SCHEMA_IDS[type(event).__name__])
            self.records.append((topic, 0, offset, read(schema, schema, value)))

    def of(self, *types: str) -> list[tuple[str, int, int, dict[str, Any]]]:
        return [r for r in self.records if r[3]["envelope"]["event_type"] in types]


def _folded(batches: list[list[Placed]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for batch in batches:
        current = pl.DataFrame(list(rows.values()), schema=frame_schema(tables.orders))
        folded = order_fold.fold(current, order_fold.changes(_frames(batch))).to_dicts()
        rows.update({(row["order_id"],): row for row in folded})
    return rows


def _assert_as_reference(batches: list[list[Placed]]) -> None:
    rows, expected = _folded(batches), reference(_Log(batches))  # type: ignore[arg-type]
    assert rows.keys() == expected.keys()
    for key, want in expected.items():
        assert {name: rows[key].get(name) for name in want} == want, key


@settings(max_examples=example_count(60), deadline=None)
@given(logs())
def test_orders_folded_batch_by_batch_equal_the_causal_fold(batches: list[list[Placed]]) -> None:
    _assert_as_reference(batches)


def test_each_event_its_own_batch_or_all_in_one_fold_the_same() -> None:
    causal = [
        (topic, offset, event)
        for n, ending in enumerate(ENDINGS)
        for topic, found in _history(n, ending).items()
        for offset, event in enumerate(found)
    ]
    _assert_as_reference([causal])
    _assert_as_reference([[placed] for placed in causal])
    statuses = {row["order_id"]: row["status"] for row in _folded([causal]).values()}
    assert statuses == {
        "ord-0": "REJECTED",
        "ord-1": "FILLED",
        "ord-2": "FILLED",
        "ord-3": "CANCELLED",
        "ord-4": "EXPIRED",
        "ord-5": "PARTIALLY_FILLED",
        "ord-6": "FILLED",
    }
