"""How a processor is hosted, and what the host counts."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostConfig:
    """How a processor is hosted."""

    instance: str = "0"  # stable per deployment slot: the transactional id derives from it (fencing of zombies)
    input_prefix: str | None = None  # namespace of the inputs; default KafkaSettings.topic_prefix
    output_prefix: str | None = None  # namespace of outputs, consumer group and transactional id; default as above
    batch_max: int = 2000  # records per transaction at most
    batch_ms: int = 100  # and at most this long open while records keep coming; an idle input commits at once
    grace_ms: int = 300  # how long a partitioned input must sit at the end of its log before the others go on
    broadcast_grace_ms: int = 0  # the same for broadcast inputs (reference data: ticks never hold an order back)
    # (a broadcast record itself waits for no grace period: it is taken once the others have nothing more fetched)


@dataclass
class HostStats:
    consumed: int = 0
    produced: int = 0
    dead_lettered: int = 0
    commits: int = 0
    restarts: int = 0
    replayed: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
