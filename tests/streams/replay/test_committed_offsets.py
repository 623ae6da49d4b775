"""What a group has committed is answered at once, even while a processor's transaction holds offsets it has not
committed — as after a worker is killed mid-batch, when the broker keeps that transaction open until it times out."""

from __future__ import annotations

import time
import uuid

import pytest

from streams import kafka
from streams.kafka import FinalCommits, TopicPartition
from streams.replay.verify import committed_offsets
from streams.settings import KafkaSettings

pytestmark = pytest.mark.integration


def comes_to(commits: FinalCommits, group: str, ends: dict[TopicPartition, int], expected: int) -> int:
    """What the group's final commits count, asked until they count ``expected`` (for up to 5 s): a transaction's
    offsets become the group's when the coordinator writes its marker, just after the commit returns."""
    deadline = time.monotonic() + 5
    while (found := committed_offsets(commits, group, ends)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_committed_offsets_count_final_commits_and_do_not_wait_on_an_open_transaction(topics: KafkaSettings) -> None:
    topic, group = topics.topic_prefix + "ticks", topics.topic_prefix + "signals"
    ends = {TopicPartition(topic, 0): 10}
    member = kafka.consumer(topics, group)
    producer = kafka.producer(topics, **{"transactional.id": f"{group}-{uuid.uuid4().hex[:8]}"})
    try:
        member.assign([TopicPartition(topic, 0)])
        producer.init_transactions(30)
        producer.begin_transaction()
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 4)], member.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        producer.begin_transaction()  # a batch on: its offsets added, its commit never sent (the worker was killed)
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 9)], member.consumer_group_metadata(), 30)

        with FinalCommits(topics) as commits:
            started = time.monotonic()
            assert comes_to(commits, group, ends, 4) == 4  # the open transaction's 9 is not the group's yet
            assert committed_offsets(commits, group, ends) == 4
            assert time.monotonic() - started < 10, "the question waited on the open transaction"

            producer.commit_transaction(30)
            assert comes_to(commits, group, ends, 9) == 9  # the same consumer, asked again
    finally:
        member.close()
