"""How a processor is hosted, and what the host counts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from pydantic import Field

from schemas.settings import TradecoreSettings


@dataclass(frozen=True)
class HostConfig:
    """How a processor is hosted."""

    instance: str = "0"  # stable per deployment slot: the transactional id derives from it (fencing of zombies)
    input_prefix: str | None = None  # namespace of the inputs; default KafkaSettings.topic_prefix
    output_prefix: str | None = None  # namespace of outputs, consumer group and transactional id; default as above
    batch_max: int = 2000  # records per transaction at most
    batch_ms: int = 100  # and at most this long open while a backlog keeps coming; a pass that took all there was
    # commits at once (once the last commit is answered)
    grace_ms: int = 300  # how long a partitioned input must sit at the end of its log before the others go on
    broadcast_grace_ms: int = 0  # the same for broadcast inputs (reference data: ticks never hold an order back)
    # (a broadcast record itself waits for no grace period: it is taken once the others have nothing more fetched)
    # A checkpointed processor writes each partition's state once it has taken this many records since the last
    # checkpoint, or this long after it took the first of them, or once processing them took its share of
    # checkpoint_work_ms (whichever comes first), in the batch's transaction. The last bounds what a restart replays
    # by its cost, whatever a record costs and however fast records come: an instance's tasks share it equally.
    checkpoint_records: int = 20_000
    checkpoint_ms: int = 30_000
    checkpoint_work_ms: int = 2_000
    restore_checkpoints: bool = True  # False: ignore every checkpoint and rebuild from the beginning
    # Liveness: an instance that has taken no record for this long while its inputs hold records it has not fetched
    # (or a rebuild whose reads made no progress for this long) starts over with new clients. Well past the longest a
    # transaction may stay open upstream (20 s, transaction.timeout.ms), which holds read_committed readers back.
    stall_ms: int = 120_000


@dataclass
class HostStats:
    consumed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    commits: int = 0
    restarts: int = 0
    replayed: int = 0  # input records folded by rebuilds
    checkpoints: dict[str, int] = field(default_factory=dict)  # by outcome: written, restored, absent, unreadable
    rebuilt: dict[int, int] = field(default_factory=dict)  # per task (input partition): times it was brought up
    live_after_s: float = 0.0  # the last rebuild: from its partitions' assignment to live
    held_max: int = 0  # the most fetched records that waited at once for their turn (in the merger)
    # Seconds spent waiting for input while the merger held records: for a grace period to run out (an input at the
    # end of its log) or for a slower input to catch up — the cost of the event-time merge a plain loop does not pay.
    held_wait_s: float = 0.0
    framed: int = 0  # records taken, or folded by rebuilds, as frames (``streams.host.frames``), not one by one
    # When the host's loop last came round (monotonic clock): a host thread blocked in a call that does not return
    # cannot notice it itself (``streams.worker`` says where it waits).
    pulse: float = field(default_factory=time.monotonic)
    by_topic: dict[str, int] = field(default_factory=dict)


class CheckpointSettings(TradecoreSettings):
    """How often `tradecore worker` checkpoints each partition's state (``TRADECORE_CHECKPOINT_*``)."""

    checkpoint_records: int = Field(
        HostConfig.checkpoint_records,
        ge=1,
        description="Checkpoint a partition once it has taken this many records since its last checkpoint.",
    )
    checkpoint_ms: int = Field(
        HostConfig.checkpoint_ms,
        ge=1,
        description="... or once this long has passed since the last checkpoint with records taken since.",
    )
    checkpoint_work_ms: int = Field(
        HostConfig.checkpoint_work_ms,
        ge=1,
        description="... or once processing the records taken since took this long, shared among the instance's "
        "partitions: about the processing a restart replays at most.",
    )

    def apply(self, config: HostConfig) -> HostConfig:
        return replace(
            config,
            checkpoint_records=self.checkpoint_records,
            checkpoint_ms=self.checkpoint_ms,
            checkpoint_work_ms=self.checkpoint_work_ms,
        )
