"""How processors stamp the events they derive, deterministically.

A derived event takes its time and causal chain from the event that triggered it — never from the wall clock —
and its id from its place in its own stream, so replaying the same log derives byte-identical events:

* ``occurred_at``  = the trigger's ``occurred_at`` (event time flows through);
* ``recorded_at``  = the trigger's ``recorded_at`` (when the originating fact entered the log);
* ``correlation_id`` = the trigger's; ``causation_id`` = the trigger's ``event_id``;
* ``sequence``     = gap-free per (topic, aggregate), counted by the processor that owns the aggregate;
* ``event_id``     = derived from (topic, aggregate, sequence) by ``commands.decide.event_id_for``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from commands.decide import event_id_for
from schemas.events import Envelope, Event, new_envelope


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


@dataclass
class Sequences:
    """Last sequence written per aggregate: part of a processor's state, so it survives restarts with it."""

    last: dict[str, int] = field(default_factory=dict)

    def next(self, aggregate_id: str) -> int:
        value = self.last.get(aggregate_id, 0) + 1
        self.last[aggregate_id] = value
        return value
