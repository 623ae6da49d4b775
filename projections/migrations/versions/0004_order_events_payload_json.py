"""The audit trail's payloads as ``json``, not ``jsonb``: kept as written, and cheaper to take in.

An order event's payload is written once and read back whole by its order's id, never searched inside: ``jsonb``'s
parsed form bought nothing here and cost Postgres a third of a COPY of ``order_events`` (bench/read_models.py:
96,233 → 114,415 events/s, raw COPY of the same rows 155k → 186k rows/s). ``json`` also keeps the payload as the
projector wrote it, field order included. Schemas built at this revision or later already have it (the baseline
builds the tables as ``projections.tables`` defines them); altering a ``json`` column to ``json`` changes nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from alembic import op
from sqlalchemy.dialects.postgresql import JSON, JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("order_events", "payload", type_=JSON, postgresql_using="payload::json", schema=_schema())


def downgrade() -> None:
    op.alter_column("order_events", "payload", type_=JSONB, postgresql_using="payload::jsonb", schema=_schema())


def _schema() -> str:
    # (an ALTER names its table as given: the schema translation of the environment maps Table objects only)
    config = op.get_context().config
    assert config is not None, "the read models migrate online, with projections.namespace's config"
    schema: str = config.attributes["schema"]
    return schema
