"""One spelling of an order's status: the upper-case values of ``domain.lifecycle.OrderStatus``, held by a CHECK.

Rows written in any other case (a lower-case ``partially_filled``) are rewritten first, so the constraint holds on
every schema built before it. Schemas built at this revision or later already have it (the baseline builds the
tables as ``projections.tables`` defines them), so it is dropped and added again rather than added twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from alembic import op
from sqlalchemy import func

from projections.tables import ORDER_STATUS_KNOWN, orders

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Statements built from the table, not raw SQL, so the migration's schema is mapped onto them.
    status = orders.c.status
    op.execute(orders.update().where(status != func.upper(status)).values(status=func.upper(status)))
    op.drop_constraint("orders_status_known", "orders", type_="check", if_exists=True)
    op.create_check_constraint("orders_status_known", "orders", ORDER_STATUS_KNOWN)


def downgrade() -> None:
    op.drop_constraint("orders_status_known", "orders", type_="check")
