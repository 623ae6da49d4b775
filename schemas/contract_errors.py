"""Errors of the event contracts: building, encoding, decoding and registering events.

They would sit in ``schemas/errors.py`` beside the root; they live here so that module stays the root alone.
"""

from schemas.errors import TradecoreError


class SchemasError(TradecoreError):
    """A failure of the event contracts: their schemas, their encoding, or the schema registry."""


class SchemaFileError(SchemasError):
    """An ``.avsc`` file is missing or not a valid Avro schema."""


class UnknownEventError(SchemasError):
    """A name, topic or class that is not one of tradecore's events or topics."""


class EventEncodeError(SchemasError):
    """An event cannot be written: a value does not fit its schema, or its schema is not registered."""


class EventDecodeError(SchemasError):
    """Bytes read from Kafka are not an event this reader can decode; the message says why."""


class SchemaRegistrationError(SchemasError):
    """The schema registry refused a schema or a compatibility setting."""


class SchemaDriftError(SchemasError):
    """An event class no longer matches its ``.avsc``: a field added, removed, reordered or retyped on one side."""


class RegistryUnavailableError(SchemasError):
    """The schema registry could not be asked (down, unreachable, or answering with a server error); retry later."""
