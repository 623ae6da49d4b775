"""Lead the unique key of an order's client id with the account: no look-up by a batch's keys can walk a namespace.

The command store looks orders up by a batch's keys, joined with the namespace as a column of the batch's rows. Led by
the namespace, this index offered the planner a scan of the namespace's whole range, filtered, for the record's
look-up by order id; where the statistics took a namespace for a few rows, it chose that and read the namespace per
batch. Led by the account, it serves the claim's look-up by (account, client order id, namespace) and nothing else.
The index is built again under the table's lock, as the API is stopped for any migration (it refuses to serve tables
of another revision: ``tradecore db upgrade`` first).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "command_side"
NAME = "orders_client_order_id_per_account"


def upgrade() -> None:
    op.drop_constraint(NAME, "orders", schema=SCHEMA)
    op.create_unique_constraint(NAME, "orders", ["account_id", "client_order_id", "namespace"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint(NAME, "orders", schema=SCHEMA)
    op.create_unique_constraint(NAME, "orders", ["namespace", "account_id", "client_order_id"], schema=SCHEMA)
