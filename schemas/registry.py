"""The schema-registry client every serializer and deserializer shares."""

from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.settings import RegistrySettings


def registry_client(settings: RegistrySettings) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": settings.url})
