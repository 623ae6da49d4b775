"""Scope the write side by topic namespace: a backtest or test namespace is a world of its own.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "command_side"


def upgrade() -> None:
    for table in ("orders", "stream_sequences", "idempotency_keys"):
        op.add_column(table, sa.Column("namespace", sa.String, nullable=False, server_default=""), schema=SCHEMA)
    op.drop_constraint("orders_client_order_id_per_account", "orders", schema=SCHEMA)
    op.drop_constraint("orders_pkey", "orders", schema=SCHEMA)
    op.create_primary_key("orders_pkey", "orders", ["namespace", "order_id"], schema=SCHEMA)
    op.create_unique_constraint(
        "orders_client_order_id_per_account", "orders", ["namespace", "account_id", "client_order_id"], schema=SCHEMA
    )
    op.drop_constraint("stream_sequences_pkey", "stream_sequences", schema=SCHEMA)
    op.create_primary_key(
        "stream_sequences_pkey", "stream_sequences", ["namespace", "topic", "aggregate_id"], schema=SCHEMA
    )
    op.drop_constraint("idempotency_keys_pkey", "idempotency_keys", schema=SCHEMA)
    op.create_primary_key("idempotency_keys_pkey", "idempotency_keys", ["namespace", "principal", "key"], schema=SCHEMA)


def downgrade() -> None:
    raise NotImplementedError("namespaced rows cannot be folded back into one namespace")
