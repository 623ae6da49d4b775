"""The live feed: each read-model row a batch changed, numbered in commit order, for GET /v1/stream.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from alembic import op

from projections.tables import live_changes

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 0001 creates every table of the current definitions, this one included, in a new schema.
    live_changes.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    live_changes.drop(op.get_bind())
