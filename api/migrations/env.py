"""Alembic environment of the write side's tables (schema ``command_side``)."""

from alembic import context
from sqlalchemy import create_engine, text

from api.store import SCHEMA, metadata

config = context.config


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
        context.configure(
            connection=conn, target_metadata=metadata, version_table="alembic_version", version_table_schema=SCHEMA
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
