"""A transaction begun as soon as the last one committed is refused by the broker far less often for the last one's
markers than one begun at once.

Until the coordinator has written the last commit's markers it refuses the next transaction's first requests
(CONCURRENT_TRANSACTIONS), and librdkafka registers the refused partitions again only 20 ms later — a stall a
processor host under a steady stream paid on nearly every transaction (docs/PERFORMANCE.md, "Stop 43"). Counted
from librdkafka's own transaction log, against transactions begun at once in the same run (how long the broker takes
over its markers depends on how warm and how busy it is), not timed."""

from __future__ import annotations

import logging
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from streams.kafka import KafkaSettings, TopicPartition, clients, transactions
from streams.kafka.transactions import TransactionalProducer

pytestmark = pytest.mark.integration

ROUNDS, EACH = 4, 25  # alternating blocks of transactions begun at once and begun as the producer begins them


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.refused = 0  # refusals heard (a refused request may be told of in more than one line)
        self.committed = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        self.refused += "CONCURRENT_TRANSACTIONS" in text or "concurrent operation" in text
        self.committed += "Committed transaction now acked by application" in text


def test_back_to_back_transactions_are_refused_less_for_the_last_ones_markers(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    sent = 0

    def block() -> int:
        """The refusals heard over ``EACH`` back-to-back transactions (the log queue is served by ``flush``)."""
        nonlocal sent
        producer.flush()
        before = refusals.refused
        for _ in range(EACH):
            producer.begin()
            producer.send(sink, None, b"%d" % sent, 0)
            producer.commit({(source, 0): sent}, group)
            sent += 1
        producer.flush()
        return refusals.refused - before

    refused = {"at once": 0, "as begun": 0}
    try:
        for _ in range(ROUNDS):
            with monkeypatch.context() as at_once:
                at_once.setattr(transactions, "MARKERS_S", 0.0)
                refused["at once"] += block()
            refused["as begun"] += block()
    finally:
        producer.close()
        group.close()
    assert refusals.committed == 2 * ROUNDS * EACH  # the log was heard
    # Five runs on a warm broker: 82-115 refusals at once, 0-6 as begun; on a broker just started the markers take
    # longer and some refusals stay as begun (13-30 in 100 transactions).
    assert refused["at once"] > 0, "no refusal even at once: this broker cannot tell the two apart"
    assert refused["as begun"] * 2 < refused["at once"], refused
