"""The schema-registry client every serializer and deserializer shares."""

from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.settings import RegistrySettings

# The client waits forever by default: a stalled registry would hang a producer's start-up or a consumer's first
# record of a new schema. Registry calls are rare (start-up, first sight of a schema id), so be generous.
REQUEST_TIMEOUT_S = 30


def registry_client(settings: RegistrySettings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.url, "timeout": REQUEST_TIMEOUT_S})


def namespace_subjects(client: SchemaRegistryClient, topic_prefix: str) -> list[str]:
    """The subjects of a topic namespace's events (each is named after its topic, so it starts with the prefix)."""
    return sorted(subject for subject in client.get_subjects() if subject.startswith(topic_prefix))


def delete_subjects(client: SchemaRegistryClient, subjects: list[str]) -> None:
    """Delete ``subjects`` for good: the registry takes a soft delete first, then the permanent one."""
    for subject in subjects:
        client.delete_subject(subject)
        client.delete_subject(subject, permanent=True)
