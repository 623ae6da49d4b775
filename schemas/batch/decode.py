"""Batches of record values to one polars frame per event type, malformed values set apart with the reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from schemas import avsc
from schemas.batch import framing, nodes
from schemas.batch.decoder import BodyReader
from schemas.batch.errors import BatchSchemaError
from schemas.batch.native import NativeReader, Verdicts
from schemas.batch.wire import Cursor
from schemas.events import Event

WriterLookup = Callable[[int], str | None]
"""The writer's schema (JSON text) registered under a schema id, or None when the registry has no such id."""

INDEX = "index"
"""The column of every decoded frame that gives each row's position in the batch."""


@dataclass(frozen=True)
class Malformed:
    """A value of the batch that is not an event this decoder reads; the same bytes will always fail."""

    index: int
    reason: str


@dataclass(frozen=True)
class DecodedBatch:
    frames: dict[str, pl.DataFrame]
    """Event name -> its rows in batch order: ``index``, then the fields of the current schema."""
    malformed: list[Malformed]
    """Values that did not decode, in batch order, each with the reason; dead-letter them."""


class BatchDecoder:
    """Decodes batches of Confluent-framed values of the given event types with their current schemas.

    Parameters:
        writers: the registry's schema text by id (``schemas.batch.registry.writers`` asks the registry once
            per id).
        events: the event classes this decoder reads; an id naming another event is a malformed value.
    """

    def __init__(self, writers: WriterLookup, events: Iterable[type[Event]]) -> None:
        self._writers = writers
        self._readers = {cls.fullname(): (cls.__name__, nodes.parse(avsc.expanded(cls.__name__))) for cls in events}
        self._plans: dict[int, _Plan | str] = {}

    def decode(self, values: Sequence[bytes | None]) -> DecodedBatch:
        framed = framing.split(values)
        reasons = dict(framed.reasons)
        parts: dict[str, list[pl.DataFrame]] = {}
        for schema_id in np.unique(framed.schema_ids).tolist():
            if schema_id < 0:
                continue
            rows = np.flatnonzero(framed.schema_ids == schema_id)
            plan = self._plan(schema_id)
            if isinstance(plan, str):
                reasons.update(dict.fromkeys(rows.tolist(), plan))
                continue
            frame, cursor = _read(plan, framed, rows)
            for row in np.flatnonzero(~cursor.ok).tolist():
                reasons[int(rows[row])] = f"schema id {schema_id} ({plan.name}): {cursor.reason[row]}"
            parts.setdefault(plan.name, []).append(frame.insert_column(0, pl.Series(INDEX, rows[cursor.ok])))
        frames = {name: _in_order(found) for name, found in parts.items()}
        malformed = [Malformed(index, reasons[index]) for index in sorted(reasons)]
        return DecodedBatch(frames, malformed)

    def _plan(self, schema_id: int) -> _Plan | str:
        plan = self._plans.get(schema_id)
        if plan is None:
            plan = self._plans[schema_id] = self._build(schema_id)
        return plan

    def _build(self, schema_id: int) -> _Plan | str:
        text = self._writers(schema_id)
        if text is None:
            return f"schema id {schema_id} is not in the registry"
        try:
            writer = nodes.parse(json.loads(text))
        except (BatchSchemaError, ValueError, KeyError, TypeError) as err:
            return f"schema id {schema_id} is not a schema this decoder reads: {err}"
        found = self._readers.get(writer.name)
        if found is None:
            return f"schema id {schema_id} is {writer.name}, not one of {', '.join(self._readers)}"
        name, reader = found
        try:
            body = BodyReader(writer, reader)
        except BatchSchemaError as err:  # the registry let an incompatible version through
            return f"schema id {schema_id} cannot be read as today's {name}: {err}"
        fast = NativeReader(writer, name) if NativeReader.applies(writer, reader) else None
        return _Plan(name, body, fast)


@dataclass(frozen=True)
class _Plan:
    """How to read the values of one schema id."""

    name: str
    body: BodyReader
    fast: NativeReader | None


def _read(plan: _Plan, framed: framing.Framed, rows: np.ndarray) -> tuple[pl.DataFrame, Cursor | Verdicts]:
    """The good records' columns and the verdicts saying which records are good (and why the others are not)."""
    if plan.fast is not None:
        found = plan.fast.read(framed, rows)
        if found is not None:
            return found
    cursor = Cursor(framed.padded, framed.body_starts[rows], framed.ends[rows])
    frame = plan.body.read(cursor, framed.binary)
    _refuse_trailing(cursor, plan.name)
    return frame.filter(pl.Series(cursor.ok)), cursor


def _refuse_trailing(cursor: Cursor, name: str) -> None:
    left = cursor.end - cursor.pos
    for row in np.flatnonzero(cursor.ok & (left > 0)).tolist():
        cursor.fail(np.array([row]), f"trailing bytes: {left[row]} bytes left after the {name} Avro body")


def _in_order(frames: list[pl.DataFrame]) -> pl.DataFrame:
    if len(frames) == 1:
        return frames[0]
    return pl.concat(frames).sort(INDEX)
