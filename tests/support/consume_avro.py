"""Run as a separate process: read N Avro records from a topic and print them as JSON lines.

usage: python -m tests.support.consume_avro BOOTSTRAP REGISTRY_URL TOPIC COUNT
"""

import json
import sys

from confluent_kafka import Consumer
from confluent_kafka.serialization import MessageField, SerializationContext

from tests.support import confluent


def main(bootstrap: str, registry_url: str, topic: str, count: int) -> None:
    deserialize = confluent.deserializer(registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"consume-avro-{topic}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        while seen < count:
            msg = consumer.poll(30)
            if msg is None:
                sys.exit(f"timed out after {seen} of {count} records")
            if msg.error():
                sys.exit(str(msg.error()))
            value = deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE))
            # str() keeps Decimal and datetime exact, so the reader can compare them to what was sent.
            print(json.dumps({"key": msg.key().decode(), "value": value}, default=str), flush=True)
            seen += 1
    finally:
        consumer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
