"""How processors stamp the events they derive, deterministically.

A derived event takes its time and causal chain from the event that triggered it — never from the wall clock —
and its id from its place in its own stream, so replaying the same log derives byte-identical events:

* ``occurred_at``  = the trigger's ``occurred_at`` (event time flows through);
* ``recorded_at``  = the trigger's ``recorded_at`` (when the originating fact entered the log);
* ``correlation_id`` = the trigger's; ``causation_id`` = the trigger's ``event_id``;
* ``sequence``     = gap-free per (topic, aggregate), counted by the processor that owns the aggregate;
* ``event_id``     = derived from (topic, aggregate, sequence) by ``event_id_for``.

A processor keeps an aggregate's count only while it may still derive events for it (see docs/STREAMS.md, "What state
is kept, and for how long"); an answer about an aggregate it holds no count for is numbered by
``untracked_sequence``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from schemas.events import Envelope, Event, new_envelope

# The namespace of every id the system derives (orders, events): fixed forever, or replays would derive new ids.
ID_NAMESPACE = uuid.UUID("6f1c54a2-8d0e-5b7a-9f3c-2a4e1d7b9c10")


def event_id_for(event: type[Event], aggregate_id: str, sequence: int) -> uuid.UUID:
    """An event's id from its place in its stream: (topic, aggregate, sequence) is unique, and so is this."""
    return uuid.uuid5(ID_NAMESPACE, f"{event.route().topic}/{aggregate_id}/{sequence}")


def derived_envelope(event: type[Event], trigger: Event, aggregate_id: str, sequence: int) -> Envelope:
    """The envelope of an ``event`` derived from ``trigger``, at ``sequence`` of the aggregate's stream."""
    return new_envelope(
        event,
        event_id=event_id_for(event, aggregate_id, sequence),
        occurred_at=trigger.envelope.occurred_at,
        recorded_at=trigger.envelope.recorded_at,
        correlation_id=trigger.envelope.correlation_id,
        causation_id=str(trigger.envelope.event_id),
        aggregate_id=aggregate_id,
        sequence=sequence,
    )


UNTRACKED = 1 << 32
"""Above any count a processor keeps for one aggregate: where the numbers of untracked answers start."""


def untracked_sequence(trigger: Event) -> int:
    """The sequence of an event about an aggregate the processor holds no count for (never seen, or forgotten).

    Numbering from 1 would repeat the sequence, and so the event id, of the aggregate's first event. The trigger's own
    sequence is unique in the trigger's stream (the same aggregate's requests, numbered by whoever wrote them), so
    ``UNTRACKED`` plus it is unique too, and the same in every replay.
    """
    return UNTRACKED + trigger.envelope.sequence


@dataclass
class Sequences:
    """Last sequence written per aggregate: part of a processor's state, so it survives restarts with it."""

    last: dict[str, int] = field(default_factory=dict)

    def next(self, aggregate_id: str) -> int:
        value = self.last.get(aggregate_id, 0) + 1
        self.last[aggregate_id] = value
        return value
