"""What the batch codec needs from the schema registry: writer schemas by id, and an event's current id."""

from __future__ import annotations

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas import avsc
from schemas.batch.decode import WriterLookup
from schemas.contract_errors import RegistryUnavailableError, SchemaRegistrationError
from schemas.events import Event
from schemas.serde import subject_name

_NOT_FOUND = 404


def writers(client: SchemaRegistryClient) -> WriterLookup:
    """Writer schemas from ``client`` (which caches them); an id the registry does not have gives None.

    Raises ``RegistryUnavailableError`` when the registry cannot be asked: retry the batch.
    """

    def lookup(schema_id: int) -> str | None:
        try:
            return str(client.get_schema(schema_id).schema_str)
        except SchemaRegistryError as err:
            if err.http_status_code == _NOT_FOUND:
                return None
            raise RegistryUnavailableError(f"could not fetch schema id {schema_id}: {err}") from err
        except Exception as err:  # transport errors from the registry client
            raise RegistryUnavailableError(f"could not reach the registry for schema id {schema_id}: {err}") from err

    return lookup


def schema_id(client: SchemaRegistryClient, event: type[Event], *, topic_prefix: str = "") -> int:
    """The registry's id of ``event``'s current schema on its topic (registered by ``serde.register_all``)."""
    subject = subject_name(topic_prefix + event.route().topic, event)
    try:
        return int(client.lookup_schema(subject, Schema(avsc.schema_str(event.__name__), "AVRO")).schema_id)
    except SchemaRegistryError as err:
        if err.http_status_code == _NOT_FOUND:
            raise SchemaRegistrationError(
                f"the current schema is not registered under {subject}",
                hint="call schemas.serde.register_all(client, topic_prefix) at start-up",
            ) from err
        raise RegistryUnavailableError(f"could not look {subject} up: {err}") from err
