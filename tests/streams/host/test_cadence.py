"""Checkpoints due together by time or work are written one partition a commit (a snapshot stops the host's loop);
those due by their count of records, and those of partitions moving to another instance, in the commit at hand."""

from __future__ import annotations

import time

from streams.host.cadence import Cadence
from streams.host.config import HostConfig
from streams.host.tasks import Task

CONFIG = HostConfig(checkpoint_records=1_000, checkpoint_ms=30_000, checkpoint_work_ms=2_000)


def started_together(n: int, taken: int, *, ago_s: float = 0.0) -> list[Task]:
    since = time.monotonic() - ago_s
    return [Task(key, object(), [("orders", key)], taken=taken, checkpointed_at=since) for key in range(n)]  # type: ignore[arg-type]


def written(task: Task) -> None:
    task.taken, task.work_s, task.checkpointed_at = 0, 0.0, time.monotonic()


def test_partitions_due_together_by_time_are_checkpointed_in_successive_commits_each_once() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(6, taken=10, ago_s=40)
    commits = []
    while picked := cadence.pick(tasks, frozenset(), lambda task: True):
        commits.append([task.key for task in picked])
        for task in picked:
            written(task)
    assert commits == [[0], [1], [2], [3], [4], [5]]


def test_partitions_due_by_their_count_of_records_are_all_checkpointed_at_once() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(6, taken=10, ago_s=40)
    tasks[4].taken = tasks[5].taken = 1_000
    picked = cadence.pick(tasks, frozenset(), lambda task: True)
    assert sorted(task.key for task in picked) == [0, 4, 5]  # the two by count, and one by time


def test_the_partition_longest_without_a_checkpoint_goes_first() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(3, taken=10, ago_s=40)  # each due by time
    tasks[2].checkpointed_at -= 5
    assert [task.key for task in cadence.pick(tasks, frozenset(), lambda task: True)] == [2]


def test_moving_partitions_are_all_checkpointed_in_the_commit_before_they_go() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(4, taken=5)  # none due by count, time or work
    tasks[2].work_s = tasks[3].work_s = 0.5  # both due by work, and staying: one of them now
    picked = cadence.pick(tasks, frozenset({0, 1}), lambda task: True)
    assert sorted(task.key for task in picked) == [0, 1, 2]


def test_a_partition_with_nothing_taken_or_not_ready_is_not_checkpointed() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(3, taken=0, ago_s=40)
    tasks[1].taken = tasks[2].taken = 1_000
    assert cadence.pick(tasks, frozenset({0}), lambda task: task.key != 1) == [tasks[2]]


def test_each_partition_is_due_once_it_has_done_its_share_of_the_work() -> None:
    cadence, tasks = Cadence(CONFIG), started_together(4, taken=1)
    tasks[0].work_s = 0.49  # the share of four: 2 s / 4
    tasks[1].work_s = 0.5
    assert [cadence.due(task, len(tasks), frozenset()) for task in tasks] == [False, True, False, False]
