"""The schema-registry client: confluent-kafka's, behind the ``schemas.registry.SchemaRegistry`` protocol the codecs
take, plus the namespace housekeeping (list and delete a namespace's subjects) that only the edge does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.registry import RegistryRefusal
from schemas.settings import RegistrySettings

# The client waits forever by default: a stalled registry would hang a producer's start-up or a consumer's first
# record of a new schema. Registry calls are rare (start-up, first sight of a schema id), so be generous.
REQUEST_TIMEOUT_S = 30
_PAGE = 1000  # the registry answers at most this many subjects at a time (Apicurio's default cap)
_NOT_FOUND = 404

T = TypeVar("T")


def registry_client(settings: RegistrySettings) -> ConfluentRegistry:
    """The registry client every serializer and deserializer of a process shares (it caches schemas and ids)."""
    return ConfluentRegistry(SchemaRegistryClient({"url": settings.url, "timeout": REQUEST_TIMEOUT_S}))


class ConfluentRegistry:
    """``schemas.registry.SchemaRegistry`` over confluent-kafka's ``SchemaRegistryClient``: Avro schemas as text,
    the registry's error answers as ``RegistryRefusal``."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self._client = client

    def register_schema(self, subject: str, schema: str) -> int:
        with _refusals():
            return int(self._client.register_schema(subject, Schema(schema, "AVRO")))

    def lookup_schema(self, subject: str, schema: str) -> int | None:
        found = _or_none(lambda: self._client.lookup_schema(subject, Schema(schema, "AVRO")))
        return None if found is None or found.schema_id is None else int(found.schema_id)

    def get_schema(self, schema_id: int) -> str | None:
        found = _or_none(lambda: self._client.get_schema(schema_id))
        return None if found is None else found.schema_str

    def set_compatibility(self, subject: str, level: str) -> None:
        with _refusals():
            self._client.set_compatibility(subject_name=subject, level=level)

    def get_compatibility(self, subject: str) -> str:
        with _refusals():
            return str(self._client.get_compatibility(subject))

    def subjects(self, prefix: str = "") -> list[str]:
        """The subjects whose names start with ``prefix``, sorted: a namespace's events (each subject is named
        after its topic, so it starts with the namespace's prefix), or every subject.

        Read page by page: a registry shared by many namespaces holds more subjects than one answer lists, and the
        subject-prefix filter is not honoured by every registry."""
        found: list[str] = []
        offset = 0
        while True:
            with _refusals():
                page = self._client.get_subjects(offset=offset, limit=_PAGE)
            found += (subject for subject in page if subject.startswith(prefix))
            if len(page) < _PAGE:
                return sorted(found)
            offset += len(page)

    def delete_subjects(self, subjects: list[str]) -> None:
        """Delete ``subjects`` for good: the registry takes a soft delete first, then the permanent one."""
        for subject in subjects:
            with _refusals():
                self._client.delete_subject(subject)
                self._client.delete_subject(subject, permanent=True)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except SchemaRegistryError as err:
        raise RegistryRefusal(err.http_status_code, err.error_message) from err


def _or_none(ask: Callable[[], T]) -> T | None:
    """What ``ask`` answers, or None where the registry answers that the thing asked for is not there."""
    try:
        return ask()
    except SchemaRegistryError as err:
        if err.http_status_code == _NOT_FOUND:
            return None
        raise RegistryRefusal(err.http_status_code, err.error_message) from err
