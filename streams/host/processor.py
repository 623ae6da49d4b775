"""What a hosted processor is: pure, deterministic logic behind a small interface."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import polars as pl

from schemas.events import Event


@dataclass(frozen=True, slots=True)
class Forward:
    """Pass an input record's bytes on unchanged to ``topic`` under a new key (a repartition)."""

    topic: str
    key: str


Output = Event | Forward


class Processor(Protocol):
    """Pure logic a host runs exactly once over Kafka.

    ``partitioned`` topics are co-partitioned and split among instances (the keys an instance owns);
    ``broadcast`` topics are read whole by every instance (reference data, like a global table).
    ``handle`` must depend only on the records it was given, in order: no clock, no randomness.
    """

    name: str
    partitioned: tuple[str, ...]
    broadcast: tuple[str, ...]

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        """The outputs of one input event (topic without namespace prefix)."""
        ...

    def reset(self) -> None:
        """Forget all state; the host rebuilds it by replaying the inputs."""
        ...


@runtime_checkable
class Columnar(Processor, Protocol):
    """A processor that also takes a batch of one input partition's records as columns (``streams.host.frames``).

    The host hands it a fetched batch's valid records of one event type as the frame ``schemas.batch`` decodes
    (column ``index`` dropped), in offset order; it must leave the state, and give the outputs, that ``handle``
    would give record by record — it only skips making an event per record.
    """

    def handle_frame(
        self, topic: str, frame: pl.DataFrame, events: Callable[[list[int]], Sequence[Event]]
    ) -> list[tuple[int, Sequence[Output] | Exception]]:
        """Per row of ``frame`` that derives something, in row order: its position and its outputs, or the exception
        ``handle`` would have raised for it (the host dead-letters that record). ``events(rows)``: those rows as
        events, for the few a rule needs whole."""
        ...


class UnreadableSnapshot(Exception):
    """A checkpoint's state this code cannot read (another format or version): the host replays in full instead."""


@runtime_checkable
class Checkpointed(Processor, Protocol):
    """A processor whose state can be kept per input partition and checkpointed (``streams.host.checkpoints``).

    The host runs one ``spawn`` per co-partitioned input partition (a task): each gets that partition's records
    and every broadcast record, so its state is that partition's alone and moves with it between instances.
    """

    def spawn(self) -> Checkpointed:
        """A fresh processor of the same configuration, with no state."""
        ...

    def snapshot(self) -> bytes:
        """The whole state as bytes: equal states give equal bytes."""
        ...

    def restore(self, data: bytes) -> None:
        """Continue from the state ``snapshot`` wrote; raises ``UnreadableSnapshot`` for anything else."""
        ...


def event_time_ms(event: Event) -> int:
    """The Kafka timestamp of an event's record: its event time, in ms (what processors interleave inputs by)."""
    return int(event.envelope.occurred_at.timestamp() * 1000)
