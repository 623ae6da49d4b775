"""The read side's database path: SQLAlchemy over psycopg 3 against the real Postgres."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Column, Engine, MetaData, Numeric, String, Table, select

pytestmark = pytest.mark.integration


def test_a_row_written_is_read_back_by_a_new_connection(db: Engine) -> None:
    assert db.dialect.driver == "psycopg"
    table = Table(
        f"probe_{uuid.uuid4().hex[:10]}",
        MetaData(),
        Column("order_id", String, primary_key=True),
        Column("price", Numeric(38, 8), nullable=False),
    )
    table.create(db)
    try:
        with db.begin() as conn:
            conn.execute(table.insert(), [{"order_id": "o-1", "price": Decimal("40123.45")}])
        with db.connect() as conn:
            rows = conn.execute(select(table.c.order_id, table.c.price)).all()
        assert rows == [("o-1", Decimal("40123.45000000"))]
    finally:
        table.drop(db)


def test_an_uncommitted_write_is_not_visible(db: Engine) -> None:
    table = Table(f"probe_{uuid.uuid4().hex[:10]}", MetaData(), Column("order_id", String, primary_key=True))
    table.create(db)
    try:
        with db.connect() as writer:
            writer.execute(table.insert(), [{"order_id": "o-2"}])
            with db.connect() as reader:
                assert reader.execute(select(table)).all() == []
            writer.rollback()
        with db.connect() as reader:
            assert reader.execute(select(table)).all() == []
    finally:
        table.drop(db)
