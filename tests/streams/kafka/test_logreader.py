"""The bounded read every rebuild, replay and audit shares: these partitions, up to these offsets, committed only."""

from __future__ import annotations

import time

import pytest

from streams import kafka
from streams.kafka import OFFSET_BEGINNING, KafkaSettings
from streams.kafka.logreader import LogReader

pytestmark = pytest.mark.integration


def write(settings: KafkaSettings, topic: str) -> None:
    """Partition 0: values 0-4 committed (offsets 0-4, marker 5), 5-7 aborted (6-8, marker 9), 8-11 committed
    (10-13, marker 14)."""
    producer = kafka.producer(settings, **{"transactional.id": f"{settings.topic_prefix}logreader-test"})
    producer.init_transactions(30)
    for values, commit in ((range(0, 5), True), (range(5, 8), False), (range(8, 12), True)):
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value=str(value).encode(), partition=0, timestamp=1_000 + value)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(30)
            producer.abort_transaction(30)


def read(settings: KafkaSettings, topic: str, stop: int) -> tuple[list[int], int]:
    """The values read from the beginning of partition 0 up to ``stop``, and the offsets progress was told of."""
    reader = LogReader(settings, f"{settings.topic_prefix}logreader-test")
    told: list[int] = []
    try:
        reader.assign({(topic, 0): OFFSET_BEGINNING})
        batches = reader.read({(topic, 0): stop}, max_records=2, wait_s=0.2, progress=told.append, stall_s=60)
        values = [int(record.value or b"") for batch in batches for record in batch]
        assert reader.finished((topic, 0))
    finally:
        reader.close()
    return values, sum(told)


def test_a_bounded_read_ends_at_its_stop_with_the_committed_records_only(topics: KafkaSettings) -> None:
    topic = topics.topic_prefix + "deadletter"
    write(topics, topic)
    reader = LogReader(topics, f"{topics.topic_prefix}logreader-ends")
    try:
        # The coordinator writes a transaction's markers after commit_transaction has returned: the log ends at 15
        # once the last marker is in (asked at once, a loaded machine answered 14).
        deadline = time.monotonic() + 10
        while (ends := reader.ends([(topic, 0)])) != {(topic, 0): 15} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ends == {(topic, 0): 15}
    finally:
        reader.close()

    # To the end: the aborted records are stepped over, and every offset counts, markers included.
    assert read(topics, topic, 15) == ([0, 1, 2, 3, 4, 8, 9, 10, 11], 15)
    # A stop inside the log: nothing at or past it, however much a fetch brought.
    assert read(topics, topic, 12) == ([0, 1, 2, 3, 4, 8, 9], 12)
    # A stop on a commit marker: the records before it, and the read still ends.
    assert read(topics, topic, 5) == ([0, 1, 2, 3, 4], 5)
