"""What the codecs need from a Confluent-API schema registry, as a protocol: the client itself is made in the Kafka
edge (``streams.kafka.registry``) and handed in by whoever composes the process.

Schemas are Avro JSON text and ids plain ints here, so nothing in ``schemas`` depends on a client library.
"""

from __future__ import annotations

from typing import Protocol


class RegistryRefusal(Exception):
    """The registry answered a request with an error status: ``status`` is the HTTP status (negative when the
    answer carried none), ``reason`` the registry's message. Errors reaching it (refused connections, timeouts)
    are not refusals: implementations let those through as they are."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.reason} (HTTP status {self.status})"


class SchemaRegistry(Protocol):
    """The calls the serializers, the deserializers and ``register_all`` make. Each raises ``RegistryRefusal`` when
    the registry says no, and whatever its transport raises when it cannot be reached."""

    def register_schema(self, subject: str, schema: str) -> int:
        """Register the Avro ``schema`` under ``subject`` (vetted by the subject's compatibility rule); its id.
        Registering a schema already there adds no version and answers its id."""
        ...

    def lookup_schema(self, subject: str, schema: str) -> int | None:
        """The id of ``schema`` as registered under ``subject``; None when it is not registered there."""
        ...

    def get_schema(self, schema_id: int) -> str | None:
        """The Avro schema text of ``schema_id``; None when the registry has no such id."""
        ...

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set ``subject``'s compatibility rule, e.g. ``BACKWARD_TRANSITIVE``."""
        ...

    def get_compatibility(self, subject: str) -> str:
        """``subject``'s compatibility rule."""
        ...
