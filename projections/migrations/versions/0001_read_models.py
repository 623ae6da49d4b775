"""The read models of DESIGN.md and their checkpoints.

The baseline revision builds the tables as ``projections.tables`` defines them at this revision; later changes
come as revisions of their own (``op.add_column`` ...), and tests/projections/test_migrations.py fails when the
migrated tables and the definitions part.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from alembic import op

from projections.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
