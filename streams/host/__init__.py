"""Hosting pure processors on Kafka: exactly-once consume-transform-produce, deterministic input order."""
