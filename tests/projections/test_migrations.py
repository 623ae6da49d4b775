"""The read models' migrations build, in any schema, exactly the tables the code defines; namespaces get schemas
of their own."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, inspect

from projections import namespace
from projections.tables import metadata


@pytest.mark.integration
def test_migrating_any_schema_builds_exactly_the_defined_tables(db: Engine) -> None:
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    try:
        namespace.upgrade(db, schema)
        namespace.upgrade(db, schema)  # idempotent: a second start changes nothing
        found = inspect(db)
        assert set(found.get_table_names(schema=schema)) == set(metadata.tables) | {"alembic_version"}
        for table in metadata.tables.values():
            columns = {c["name"]: c for c in found.get_columns(table.name, schema=schema)}
            assert list(columns) == [c.name for c in table.columns], table.name
            for column in table.columns:
                reflected = columns[column.name]["type"].compile(db.dialect)
                assert column.type.compile(db.dialect) == reflected, (table.name, column.name)
                assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
            assert found.get_pk_constraint(table.name, schema=schema)["constrained_columns"] == [
                c.name for c in table.primary_key.columns
            ]
        with db.connect() as conn:
            namespace.check_current(conn, schema, db)
    finally:
        with db.begin() as conn:
            namespace.drop(conn, schema)


def test_each_namespace_has_a_schema_of_its_own() -> None:
    assert namespace.live_schema("") == "read_models"
    assert namespace.live_schema("test-1a2b.") == "read_test_1a2b"
    assert namespace.live_schema("test-1a2b.") != namespace.live_schema("test-1a2c.")
    long = namespace.live_schema("backtest-" + "x" * 80 + ".")
    assert len(namespace.shadow_schema(long) + "_old") <= 63
    assert long != namespace.live_schema("backtest-" + "x" * 79 + "y.")
