"""When a task's state is checkpointed, and how checkpoints due together are spread over successive commits.

A task is due a checkpoint once it has taken ``checkpoint_records`` records since its last, or any that long ago
(``checkpoint_ms``), or any whose processing (or the replay that brought it up) took its share of
``checkpoint_work_ms``, or any and is moving to another instance. Tasks that start together come due together by
time or by work: the same time has passed for each, and under an even load each has done the same share of the work.
Their snapshots are taken on the host's thread, inside the commit, so writing them all in one commit stops the loop for
the whole instance's state at once — with 30,000 working orders in risk that was a third of a second, and every order
arriving meanwhile waited for it. So of the tasks due by time or work, one commit takes only the one longest without a
checkpoint; the rest follow in the next commits, milliseconds apart under load, each pause one partition's share of the
state. A task due by its count of records, or moving (the next owner must find it checkpointed), is checkpointed in the
commit at hand: the count bounds what a restart replays, and a worker may be killed right after a backlog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from streams.host.config import HostConfig
from streams.host.tasks import Task


class Cadence:
    """The checkpoint cadence of ``config``, over an instance's tasks."""

    def __init__(self, config: HostConfig) -> None:
        self._config = config

    def due(self, task: Task, tasks: int, moving: frozenset[int]) -> bool:
        """Whether ``task`` (one of ``tasks`` on this instance) is due a checkpoint, ``moving`` being moved away."""
        config = self._config
        if task.taken >= config.checkpoint_records or (task.taken > 0 and task.key in moving):
            return True
        share_s = config.checkpoint_work_ms / 1000 / max(1, tasks)
        return task.taken > 0 and (
            task.work_s >= share_s or time.monotonic() - task.checkpointed_at >= config.checkpoint_ms / 1000
        )

    def pick(self, tasks: Sequence[Task], moving: frozenset[int], ready: Callable[[Task], bool]) -> list[Task]:
        """The tasks of this instance's ``tasks`` to checkpoint in this commit, of those ``ready`` for one: every one
        due by its count of records or moving, and of the others due (by time or work), the one longest without a
        checkpoint."""
        due = [task for task in tasks if ready(task) and self.due(task, len(tasks), moving)]
        records = self._config.checkpoint_records
        urgent = [task.key in moving or task.taken >= records for task in due]
        spread = sorted((task for task, now in zip(due, urgent, strict=True) if not now), key=_last_checkpoint)
        return [task for task, now in zip(due, urgent, strict=True) if now] + spread[:1]


def _last_checkpoint(task: Task) -> float:
    return task.checkpointed_at
