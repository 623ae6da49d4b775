"""The write side's tables: orders by client order id, stream sequences, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-20
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "command_side"


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String, primary_key=True),
        sa.Column("account_id", sa.String, nullable=False),
        sa.Column("client_order_id", sa.String, nullable=False),
        sa.Column("instrument", sa.String, nullable=False),
        sa.Column("order_type", sa.String, nullable=False),
        sa.Column("request_hash", sa.String, nullable=False),
        sa.Column("topic", sa.String),
        sa.Column("partition", sa.Integer),
        sa.Column("offset", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("account_id", "client_order_id", name="orders_client_order_id_per_account"),
        schema=SCHEMA,
    )
    op.create_table(
        "stream_sequences",
        sa.Column("topic", sa.String, nullable=False),
        sa.Column("aggregate_id", sa.String, nullable=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("topic", "aggregate_id"),
        schema=SCHEMA,
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String, nullable=False),
        sa.Column("key", sa.String, nullable=False),
        sa.Column("request_hash", sa.String, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("principal", "key"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "stream_sequences", "orders"):
        op.drop_table(table, schema=SCHEMA)
