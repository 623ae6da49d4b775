"""A transaction begun as soon as the last one committed is not refused by the broker for the last one's markers.

Until the coordinator has written the last commit's markers it refuses the next transaction's first requests
(CONCURRENT_TRANSACTIONS), and librdkafka registers the refused partitions again only 20 ms later — a stall a
processor host under a steady stream paid on nearly every transaction (docs/PERFORMANCE.md, "Stop 43"). Counted
from librdkafka's own transaction log, not timed."""

from __future__ import annotations

import logging
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from streams.kafka import KafkaSettings, TopicPartition, clients
from streams.kafka.transactions import TransactionalProducer

pytestmark = pytest.mark.integration

TRANSACTIONS = 100


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.refused = 0
        self.committed = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.refused += "CONCURRENT_TRANSACTIONS" in text or "concurrent operation" in text
        self.committed += "Committed transaction now acked by application" in text


def test_back_to_back_transactions_are_not_refused_for_the_last_ones_markers(kafka_settings: KafkaSettings) -> None:
    source, sink = f"{kafka_settings.topic_prefix}source", f"{kafka_settings.topic_prefix}sink"
    admin = clients.admin(kafka_settings)  # (kept: the futures fail once their client is gone)
    for created in admin.create_topics([NewTopic(source, 1, 1), NewTopic(sink, 1, 1)]).values():
        created.result()
    group = clients.consumer(kafka_settings, f"{kafka_settings.topic_prefix}group")
    group.assign([TopicPartition(source, 0, 0)])
    refusals = _Refusals()
    librdkafka = logging.getLogger(f"test.librdkafka.{uuid.uuid4().hex}")
    librdkafka.addHandler(refusals)
    librdkafka.setLevel(logging.DEBUG)
    librdkafka.propagate = False  # (thousands of lines)
    producer = TransactionalProducer(
        kafka_settings, f"{kafka_settings.topic_prefix}writer", "test", debug="eos", logger=librdkafka
    )
    try:
        for n in range(TRANSACTIONS):
            producer.begin()
            producer.send(sink, None, b"%d" % n, 0)
            producer.commit({(source, 0): n}, group)
        producer.flush()  # serves librdkafka's log queue
    finally:
        producer.close()
        group.close()
    assert refusals.committed == TRANSACTIONS  # the log was heard
    # Begun at once, 32 to 63 of 100 were refused here (six runs), and none once begun 2 ms after the last commit
    # returned; a refusal on a busy machine is the broker taking longer than that over its markers.
    assert refusals.refused <= TRANSACTIONS // 10, f"{refusals.refused} of {TRANSACTIONS} transactions refused"
