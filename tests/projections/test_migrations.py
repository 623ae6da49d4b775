"""The read models' migrations build, in any schema, exactly the tables the code defines; namespaces get schemas
of their own."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from projections import namespace
from projections.tables import metadata, order_events, orders


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


@pytest.mark.integration
def test_order_statuses_are_rewritten_to_the_one_spelling_and_held_to_it(db: Engine) -> None:
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    config = namespace._alembic(db, schema)
    row = {"account_id": "acc-1", "instrument": "BTCUSDT", "filled_quantity": 0, "events": 1}
    try:
        command.upgrade(config, "0001")
        with db.begin() as conn:  # a schema built before the constraint, holding the lower-case spelling
            conn.execute(text(f"ALTER TABLE {namespace.quoted(schema)}.orders DROP CONSTRAINT orders_status_known"))
            mapped = conn.execution_options(schema_translate_map={None: schema})
            mapped.execute(
                orders.insert(),
                [{**row, "order_id": "o1", "status": "partially_filled", "updated_at": datetime.now(UTC)}],
            )
        command.upgrade(config, "head")
        with db.begin() as conn:
            mapped = conn.execution_options(schema_translate_map={None: schema})
            assert mapped.execute(orders.select()).mappings().one()["status"] == "PARTIALLY_FILLED"
        with pytest.raises(IntegrityError, match="orders_status_known"), db.begin() as conn:
            mapped = conn.execution_options(schema_translate_map={None: schema})
            mapped.execute(
                orders.insert(), [{**row, "order_id": "o2", "status": "accepted", "updated_at": datetime.now(UTC)}]
            )
    finally:
        with db.begin() as conn:
            namespace.drop(conn, schema)


@pytest.mark.integration
def test_audit_trail_payloads_become_json_and_keep_what_they_held(db: Engine) -> None:
    schema = f"probe_{uuid.uuid4().hex[:8]}"
    config = namespace._alembic(db, schema)
    payload = {"order_id": "o1", "quantity": "0.00100000", "limit_price": None}
    try:
        command.upgrade(config, "0003")
        with db.begin() as conn:  # a schema built before revision 0004, its payloads jsonb, one row in it
            table = f"{namespace.quoted(schema)}.order_events"
            conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN payload TYPE jsonb USING payload::jsonb"))
            conn.execute(
                text(
                    f"INSERT INTO {table} VALUES ('orders', 0, 7, 'o1', 'acc-1', 'e1', 'OrderPlaced', now(), now(), "
                    "'c1', NULL, 'o1', 1, CAST(:payload AS jsonb))"
                ),
                {"payload": json.dumps(payload)},
            )
        command.upgrade(config, "head")
        found = inspect(db).get_columns("order_events", schema=schema)
        assert [c["type"].compile(db.dialect) for c in found if c["name"] == "payload"] == ["JSON"]
        with db.begin() as conn:
            mapped = conn.execution_options(schema_translate_map={None: schema})
            assert mapped.execute(order_events.select()).mappings().one()["payload"] == payload
    finally:
        with db.begin() as conn:
            namespace.drop(conn, schema)
