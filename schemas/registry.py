"""The schema-registry client every serializer and deserializer shares."""

from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.settings import RegistrySettings

# The client waits forever by default: a stalled registry would hang a producer's start-up or a consumer's first
# record of a new schema. Registry calls are rare (start-up, first sight of a schema id), so be generous.
REQUEST_TIMEOUT_S = 30


def registry_client(settings: RegistrySettings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.url, "timeout": REQUEST_TIMEOUT_S})


_PAGE = 1000  # the registry answers at most this many subjects at a time (Apicurio's default cap)


def namespace_subjects(client: SchemaRegistryClient, topic_prefix: str) -> list[str]:
    """The subjects of a topic namespace's events (each is named after its topic, so it starts with the prefix).

    Read page by page: a registry shared by many namespaces holds more subjects than one answer lists, and the
    subject-prefix filter is not honoured by every registry."""
    found: list[str] = []
    offset = 0
    while True:
        page = client.get_subjects(offset=offset, limit=_PAGE)
        found += (subject for subject in page if subject.startswith(topic_prefix))
        if len(page) < _PAGE:
            return sorted(found)
        offset += len(page)


def delete_subjects(client: SchemaRegistryClient, subjects: list[str]) -> None:
    """Delete ``subjects`` for good: the registry takes a soft delete first, then the permanent one."""
    for subject in subjects:
        client.delete_subject(subject)
        client.delete_subject(subject, permanent=True)
