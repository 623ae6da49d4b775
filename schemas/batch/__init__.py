"""Batch Avro codec: many Kafka record values to columns and back, in a few numpy/polars operations per field.

Wire contract (the same as ``schemas.serde``, which stays the per-record path): each record value is the Confluent
framing — magic byte ``0x00``, the registry's schema id as 4 big-endian bytes — then the Avro binary body of one
event, and nothing after it. The encoder writes exactly the bytes ``EventSerializer`` (fastavro) writes: decimals
as the shortest big-endian two's complement fastavro picks, timestamps as microseconds, maps as one block.

Columns (polars): a frame per event type, one column per field of the current schema; the envelope is a struct
column; decimals are ``pl.Decimal(p, s)``, timestamps ``pl.Datetime("us", "UTC")``, uuids strings, enums
``pl.Enum``, ``["null", T]`` fields nullable, maps ``List(Struct{key, value})``.

Use::

    decoder = BatchDecoder(registry.writers(client), events_on("orders"))
    batch = decoder.decode([message.value() for message in messages])
    for item in batch.malformed:           # dead-letter messages[item.index] with item.reason
        ...
    placed = batch.frames.get("OrderPlaced")  # column "index" ties each row to its message

    encoder = BatchEncoder(TickIngested, registry.schema_id(client, TickIngested, topic_prefix=prefix))
    values = encoder.encode(ticks_frame)   # one value per row, ready for produce()

Decoding resolves each writer schema id to the current reader schema (older released versions decode, with
defaults for added fields). A value that is too short, lacks the magic byte, names an unknown schema id or another
event, is truncated, or has bytes after its body comes back in ``malformed`` with its index and reason; the rest
of the batch decodes.
"""

from schemas.batch.decode import INDEX, BatchDecoder, DecodedBatch, Malformed, WriterLookup
from schemas.batch.encode import BatchEncoder
from schemas.batch.errors import BatchEncodeError, BatchSchemaError

__all__ = [
    "INDEX",
    "BatchDecoder",
    "BatchEncodeError",
    "BatchEncoder",
    "BatchSchemaError",
    "DecodedBatch",
    "Malformed",
    "WriterLookup",
]
