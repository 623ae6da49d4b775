"""Alembic environment of the read models: one run migrates one schema, named by the caller (``projections.namespace``).

Every table is defined without a schema and mapped onto the target schema, so the same revisions build the live
schema of any namespace, and the shadow and scratch schemas of rebuild and verify.
"""

from alembic import context
from sqlalchemy import Engine, text

from projections.namespace import quoted
from projections.tables import metadata

config = context.config


def run_migrations_online() -> None:
    engine: Engine = config.attributes["engine"]
    schema: str = config.attributes["schema"]
    with engine.begin() as conn:
        # Two processes starting at once (the API and the runner) must not both create the schema.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:s, 0))"), {"s": "read-models:" + schema})
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {quoted(schema)}"))
        mapped = conn.execution_options(schema_translate_map={None: schema})
        context.configure(
            connection=mapped,
            target_metadata=metadata,
            version_table="alembic_version",
            version_table_schema=schema,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
