"""Events to and from Kafka record values in the Confluent wire format, through the schema registry.

Bytes: magic byte 0, the 4-byte schema id, then the Avro body written by fastavro — the bytes confluent-kafka's
``AvroSerializer`` writes, so any Confluent-compatible consumer reads our topics (its ``AvroDeserializer`` among them,
tests/schemas/test_serde_wire.py). Reading does what that ``AvroDeserializer`` does with our configuration (writer
schema by id from the registry, resolved against the reader schema by fastavro). Both skip its per-record subject and
rule look-ups, which cost more than the coding itself, and neither needs a Kafka library: the registry is whatever
implements ``schemas.registry.SchemaRegistry`` (the Kafka edge makes the real client).

Subjects: several event types share a topic, so each (topic, event) pair is a subject of its own, named by
``topic_record_subject_name_strategy``: ``<prefix><topic>-tradecore.events.<Event>``. Each evolves on its own
under BACKWARD_TRANSITIVE compatibility.

Registration happens once, at producer start-up, in ``register_all``; serializers only look their schema up
(``auto.register.schemas=False``), so a running service can never put an unvetted schema into the registry.

Reading: the writer's schema id picks the event class, and the bytes are decoded with the writer's schema resolved
against that class's current schema — so events written under an older version decode with today's code.

Build one ``EventSerializer`` / ``EventDeserializer`` per topic and reuse it: each holds the parsed schema and the
schema id of each event type, and caches what it learnt from the registry.
"""

from __future__ import annotations

import io
import json
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import fastavro
import fastavro.schema

from schemas import avsc, codec
from schemas.batch import native, nodes
from schemas.batch.records import RecordWriter
from schemas.contract_errors import (
    EventDecodeError,
    EventEncodeError,
    RegistryUnavailableError,
    SchemaRegistrationError,
    UnknownEventError,
)
from schemas.events import EVENT_TYPES, Event, events_on
from schemas.registry import RegistryRefusal, SchemaRegistry

COMPATIBILITY = "BACKWARD_TRANSITIVE"
_MAGIC_BYTE = 0
_HEADER_SIZE = 5  # magic byte + 4-byte big-endian schema id
_CONFLICT = 409


def subject_name(topic: str, event: type[Event]) -> str:
    """The registry subject of ``event`` on ``topic`` (the full topic name, prefix included), as confluent-kafka's
    ``topic_record_subject_name_strategy`` names it."""
    return f"{topic}-{event.fullname()}"


@dataclass(frozen=True)
class Registration:
    """An event's current schema as the registry holds it."""

    event: str
    subject: str
    schema_id: int


def register_all(client: SchemaRegistry, topic_prefix: str = "") -> list[Registration]:
    """Set BACKWARD_TRANSITIVE on every event's subject and register its current schema there; idempotent.

    Run once at producer start-up, before any ``EventSerializer`` is used. Registering a schema already registered
    returns its id and adds no version.

    Raises:
        SchemaRegistrationError: the registry refused a schema (not backward compatible with every version
            registered under its subject) or the compatibility setting.
        RegistryUnavailableError: the registry could not be reached.
    """
    registered = []
    for name, cls in EVENT_TYPES.items():
        subject = subject_name(topic_prefix + cls.route().topic, cls)
        schema = avsc.schema_str(name)
        try:
            # Compatibility first: the registration below is then vetted against every earlier version.
            _set_compatibility(client, subject)
            schema_id = _register(client, subject, schema)
        except RegistryRefusal as err:
            if err.status == _CONFLICT:
                raise SchemaRegistrationError(
                    f"the registry refused the current schema of {name} under {subject}: it cannot read every "
                    f"version registered there ({err.reason})",
                    hint="`make schemas-check` names the difference; add fields only with defaults, never retype "
                    "or remove one",
                ) from err
            if err.status >= 500 or err.status < 0:
                raise RegistryUnavailableError(
                    f"the registry failed registering {name} under {subject}: {err}"
                ) from err
            raise SchemaRegistrationError(f"the registry refused {name} under {subject}: {err}") from err
        except Exception as err:  # the client lets transport errors (connection refused, timeouts) through as they are
            raise RegistryUnavailableError(f"could not reach the registry to register {name}: {err}") from err
        registered.append(Registration(name, subject, schema_id))
    return registered


class EventSerializer:
    """Events of one topic to Confluent-framed Avro bytes, with the schemas ``register_all`` registered.

    Parameters:
        client: the shared registry client (``streams.kafka.registry.registry_client``).
        topic: the topic's name before any prefix, e.g. ``orders``.
        topic_prefix: the namespace of this deployment, test or replay (``KafkaSettings.topic_prefix``).
    """

    def __init__(self, client: SchemaRegistry, topic: str, *, topic_prefix: str = "") -> None:
        """Check every event of ``topic`` against its class and the registry now, so a gap fails at start-up.

        Raises:
            SchemaRegistrationError: an event's current schema is not registered (run ``register_all`` first).
            RegistryUnavailableError: the registry could not be reached.
            SchemaDriftError: an event class does not match its ``.avsc``.
        """
        self.topic = topic_prefix + topic
        # event class -> (the Confluent header with its schema id, its parsed schema, the Rust writer of its flat
        # schema: ≈ a third of fastavro's time per record, the same bytes)
        self._writers: dict[type[Event], tuple[bytes, Any, RecordWriter | None]] = {}
        for cls in events_on(topic):
            codec.prepare(cls)
            schema = avsc.schema_str(cls.__name__)
            schema_id = _look_up(client, subject_name(self.topic, cls), schema)
            header = bytes([_MAGIC_BYTE]) + schema_id.to_bytes(_HEADER_SIZE - 1, "big")
            node = nodes.parse(avsc.expanded(cls.__name__))
            fast = RecordWriter(node, header) if native.flat(node) else None
            self._writers[cls] = (header, fastavro.parse_schema(json.loads(schema)), fast)

    def serialize(self, event: Event) -> bytes:
        """The record value for ``event``.

        Raises:
            UnknownEventError: ``event`` is not written to this topic.
            EventEncodeError: a value does not fit the schema.
        """
        cls = type(event)
        writer = self._writers.get(cls)
        if writer is None:
            raise UnknownEventError(
                f"{cls.__name__} is not written to {self.topic}",
                hint=f"it goes to {cls.route().topic}" if cls.__name__ in EVENT_TYPES else None,
            )
        header, schema, fast = writer
        record = codec.to_avro(event)
        try:
            if fast is not None:
                [value] = fast.encode([record])
                return value
            out = io.BytesIO()
            out.write(header)
            fastavro.schemaless_writer(out, schema, record)
        except Exception as err:  # TypeError, ValueError, OverflowError, ... for values off schema
            raise EventEncodeError(f"{cls.__name__} does not fit its schema: {type(err).__name__}: {err}") from err
        return out.getvalue()

    def key(self, event: Event) -> bytes:
        """The record key for ``event``: its account or instrument, UTF-8."""
        return event.key.encode()


class EventDeserializer:
    """Confluent-framed Avro bytes of one topic to typed events, read with the current classes' schemas.

    Parameters are those of ``EventSerializer``.
    """

    def __init__(self, client: SchemaRegistry, topic: str, *, topic_prefix: str = "") -> None:
        self.topic = topic_prefix + topic
        self._client = client
        self._readers: dict[str, tuple[type[Event], Any]] = {}
        for cls in events_on(topic):
            codec.prepare(cls)
            self._readers[cls.fullname()] = (cls, fastavro.parse_schema(json.loads(avsc.schema_str(cls.__name__))))
        # schema id -> (event name, the writer's parsed schema, the event class, its reader schema)
        self._by_schema_id: dict[int, tuple[str, Any, type[Event], Any]] = {}

    def deserialize(self, data: bytes | None) -> Event:
        """The event in a record value.

        Raises:
            EventDecodeError: the bytes are not a tradecore event of this topic that this code can read; the
                message says why. The same bytes will always fail: dead-letter them.
            RegistryUnavailableError: the registry could not be asked for the writer's schema; retry.
        """
        cls, record = self.read(data)
        assert record is not None  # every event is wanted
        try:
            return codec.from_avro(cls, record)
        except Exception as err:  # a value the class refuses (e.g. an enum symbol it lacks)
            raise EventDecodeError(
                f"{self.topic}: a {cls.__name__} does not build: {type(err).__name__}: {err}"
            ) from err

    def read(
        self, data: bytes | None, wanted: Container[str] | None = None
    ) -> tuple[type[Event], dict[str, Any] | None]:
        """The event class and the record as fastavro reads it with that class's schema: field names as in the
        class, logical types converted (``Decimal``, ``datetime``, ``UUID``), enums as plain ``str``, the envelope
        a nested dict. For readers that only look values up and need not pay for building the dataclass.

        With ``wanted`` (event names), an event not among them comes back with None for its record: its framing and
        schema id are checked, its body is not read.

        Raises what ``deserialize`` raises.
        """
        schema_id, (name, writer, cls, reader) = self._writer_of(data)
        assert data is not None  # _writer_of refused None
        if wanted is not None and cls.__name__ not in wanted:
            return cls, None
        try:
            # What confluent-kafka's AvroDeserializer does for us (no rules, no migrations configured), minus its
            # per-record look-ups: the writer's schema resolved against the class's schema.
            body = io.BytesIO(data[_HEADER_SIZE:])
            record: dict[str, Any] = fastavro.schemaless_reader(body, writer, reader)  # type: ignore[assignment]
        except Exception as err:  # fastavro raises EOFError, IndexError, ValueError, ... on bytes that do not fit
            raise EventDecodeError(
                f"{self.topic}: {len(data)} bytes under schema id {schema_id} ({name}) do not decode: "
                f"{type(err).__name__}: {err}"
            ) from err
        left = len(data) - _HEADER_SIZE - body.tell()
        if left:
            # fastavro stops at the end of the record and ignores the rest: a value with bytes appended would
            # otherwise pass as the event in front of them (a tampered or mis-framed record).
            raise EventDecodeError(
                f"{self.topic}: trailing bytes: {left} bytes left after the {name} Avro body "
                f"(schema id {schema_id}); a record value holds exactly one event"
            )
        return cls, record

    def _writer_of(self, data: bytes | None) -> tuple[int, tuple[str, Any, type[Event], Any]]:
        if data is None or len(data) <= _HEADER_SIZE:
            size = "no value" if data is None else f"{len(data)} bytes"
            raise EventDecodeError(
                f"{self.topic}: {size} is too short for the Confluent wire format "
                f"(magic byte, 4-byte schema id, Avro body)"
            )
        if data[0] != _MAGIC_BYTE:
            raise EventDecodeError(
                f"{self.topic}: first byte is {data[0]:#04x}, not the Confluent magic byte 0x00; "
                f"these bytes were not written by a schema-registry serializer"
            )
        schema_id = int.from_bytes(data[1:_HEADER_SIZE], "big")
        found = self._by_schema_id.get(schema_id)
        if found is None:
            found = self._by_schema_id[schema_id] = self._reader_for(schema_id)
        return schema_id, found

    def _reader_for(self, schema_id: int) -> tuple[str, Any, type[Event], Any]:
        try:
            writer = self._client.get_schema(schema_id)
        except RegistryRefusal as err:
            raise RegistryUnavailableError(f"could not fetch schema id {schema_id}: {err}") from err
        except Exception as err:  # transport errors from the registry client
            raise RegistryUnavailableError(f"could not reach the registry for schema id {schema_id}: {err}") from err
        if writer is None:
            raise EventDecodeError(
                f"{self.topic}: schema id {schema_id} is not in the registry",
                hint="the bytes were written through another registry, or are not an event",
            )
        try:
            # Parsed, not just read: registries may store "name" and "namespace" apart (Apicurio does).
            parsed = fastavro.schema.parse_schema(json.loads(writer))
        except Exception as err:  # fastavro raises several types for a schema it cannot parse
            raise EventDecodeError(
                f"{self.topic}: schema id {schema_id} is not an Avro schema: {type(err).__name__}: {err}"
            ) from err
        name = str(parsed.get("name")) if isinstance(parsed, dict) else "not a record"
        found = self._readers.get(name)
        if found is None:
            raise EventDecodeError(
                f"{self.topic}: schema id {schema_id} is {name}, which is not an event of this topic",
                hint=f"events of {self.topic}: {', '.join(self._readers)}",
            )
        cls, reader = found
        if _same(parsed, reader):
            reader = None  # written with today's schema: nothing to resolve, read as written (twice as fast)
        return name, parsed, cls, reader


def _set_compatibility(client: SchemaRegistry, subject: str) -> None:
    try:
        client.set_compatibility(subject, COMPATIBILITY)
    except RegistryRefusal as err:
        # Processes starting together race to create the subject's rule; the registry answers the later ones
        # 409 ("already exists"). The rule another process set is as good as ours when it says the same.
        if err.status != _CONFLICT or client.get_compatibility(subject) != COMPATIBILITY:
            raise


def _register(client: SchemaRegistry, subject: str, schema: str) -> int:
    try:
        return client.register_schema(subject, schema)
    except RegistryRefusal as err:
        if err.status != _CONFLICT:
            raise
        # 409 is also how a registry answers the loser of two simultaneous registrations of the same schema:
        # if the schema is there now, another process registered it. Otherwise it is a real refusal.
        try:
            found = client.lookup_schema(subject, schema)
        except RegistryRefusal:
            found = None
        if found is None:
            raise err from None
        return found


def _look_up(client: SchemaRegistry, subject: str, schema: str) -> int:
    """The id of ``schema`` under ``subject``, which ``register_all`` registered."""
    try:
        schema_id = client.lookup_schema(subject, schema)
    except RegistryRefusal as err:
        raise RegistryUnavailableError(f"could not look {subject} up in the registry: {err}") from err
    except Exception as err:  # the client lets transport errors (connection refused, timeouts) through as they are
        raise RegistryUnavailableError(f"could not reach the registry to look {subject} up: {err}") from err
    if schema_id is None:
        raise SchemaRegistrationError(
            f"the current schema is not registered under {subject}",
            hint="call schemas.serde.register_all(client, topic_prefix) at start-up, before building serializers",
        )
    return schema_id


def _same(writer: Any, reader: Any) -> bool:
    """Whether two parsed schemas are the same in every attribute (logical types and defaults included)."""
    return json.dumps(writer, sort_keys=True, default=str) == json.dumps(reader, sort_keys=True, default=str)
