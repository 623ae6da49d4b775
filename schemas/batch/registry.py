"""What the batch codec needs from the schema registry: writer schemas by id, and an event's current id."""

from __future__ import annotations

from schemas import avsc
from schemas.batch.decode import WriterLookup
from schemas.contract_errors import RegistryUnavailableError, SchemaRegistrationError
from schemas.events import Event
from schemas.registry import RegistryRefusal, SchemaRegistry
from schemas.serde import subject_name


def writers(client: SchemaRegistry) -> WriterLookup:
    """Writer schemas from ``client`` (which caches them); an id the registry does not have gives None.

    Raises ``RegistryUnavailableError`` when the registry cannot be asked: retry the batch.
    """

    def lookup(schema_id: int) -> str | None:
        try:
            return client.get_schema(schema_id)
        except RegistryRefusal as err:
            raise RegistryUnavailableError(f"could not fetch schema id {schema_id}: {err}") from err
        except Exception as err:  # transport errors from the registry client
            raise RegistryUnavailableError(f"could not reach the registry for schema id {schema_id}: {err}") from err

    return lookup


def schema_id(client: SchemaRegistry, event: type[Event], *, topic_prefix: str = "") -> int:
    """The registry's id of ``event``'s current schema on its topic (registered by ``serde.register_all``)."""
    subject = subject_name(topic_prefix + event.route().topic, event)
    try:
        found = client.lookup_schema(subject, avsc.schema_str(event.__name__))
    except RegistryRefusal as err:
        raise RegistryUnavailableError(f"could not look {subject} up: {err}") from err
    if found is None:
        raise SchemaRegistrationError(
            f"the current schema is not registered under {subject}",
            hint="call schemas.serde.register_all(client, topic_prefix) at start-up",
        )
    return found
