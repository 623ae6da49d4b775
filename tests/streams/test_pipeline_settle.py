"""A backtest's wait for its processors to settle is not held up by an open transaction holding a group's offsets.

An instance killed mid-batch leaves its transaction open, with the batch's offsets in it, until the broker aborts it
(20 s). The wait once asked the groups' committed offsets as a read_committed consumer — stable ones, which the
coordinator does not give while such a transaction is open — and failed when the question timed out after 30 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams import kafka, pipeline
from streams.kafka import TopicPartition
from streams.settings import KafkaSettings

pytestmark = pytest.mark.integration


def test_settling_does_not_wait_on_a_stopped_instances_open_transaction(topics: KafkaSettings, tmp_path: Path) -> None:
    group = topics.topic_prefix + "risk"
    member = kafka.consumer(topics, group)  # not subscribed: the group's metadata for the stopped instance's commit
    stopped = kafka.producer(topics, **{"transactional.id": f"{group}-stopped"})
    workers = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands for `tradecore worker`
    try:
        stopped.init_transactions(30)
        stopped.begin_transaction()
        held = [TopicPartition(topics.topic_prefix + "orders", p, 0) for p in range(topics.partitions)]
        stopped.send_offsets_to_transaction(held, member.consumer_group_metadata(), 30)
        # ... and the instance is killed: its transaction stays open, nothing is left to consume.

        started = time.monotonic()
        pipeline.wait_until_settled(topics, workers, tmp_path / "worker.log", quiet_s=1, timeout_s=25)
        assert time.monotonic() - started < 15, "the wait sat on the open transaction"
    finally:
        workers.kill()
        workers.wait(10)
        stopped.abort_transaction(30)
        member.close()
