"""The local stack: a real Kafka (KRaft), Postgres (pgserver) and schema registry (Apicurio), without Docker."""
