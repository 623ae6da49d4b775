"""The schema-registry client every serializer and deserializer shares."""

from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.settings import RegistrySettings

# The client waits forever by default: a stalled registry would hang a producer's start-up or a consumer's first
# record of a new schema. Registry calls are rare (start-up, first sight of a schema id), so be generous.
REQUEST_TIMEOUT_S = 30


def registry_client(settings: RegistrySettings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.url, "timeout": REQUEST_TIMEOUT_S})
