"""Where one topic namespace's read models live: a Postgres schema of their own, created and migrated by Alembic.

The live schema is named after the topic prefix, so a test or backtest with its own prefix reads and writes a world
of its own. A rebuild fills ``<live>__shadow`` and swaps it in; ``tradecore verify`` fills ``<live>__verify`` and
compares. All of them are made by the same migrations, so they hold the very same tables.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from projections.errors import ProjectionError

MIGRATIONS = Path(__file__).with_name("migrations")
_MAX_IDENTIFIER = 63  # Postgres truncates longer names


def live_schema(topic_prefix: str) -> str:
    """``read_models`` for the default namespace, ``read_<prefix>`` for another, always a valid identifier."""
    if not topic_prefix:
        return "read_models"
    slug = re.sub(r"[^a-z0-9]+", "_", topic_prefix.lower()).strip("_")
    name = f"read_{slug}"
    if len(name) > _MAX_IDENTIFIER - len("__shadow_old"):
        name = name[:40] + "_" + hashlib.sha1(topic_prefix.encode()).hexdigest()[:8]
    return name


def shadow_schema(live: str) -> str:
    return f"{live}__shadow"


def scratch_schema(live: str) -> str:
    return f"{live}__verify"


def old_schema(live: str) -> str:
    """Where a rebuild parks the tables it swaps out, until it drops them."""
    return f"{live}__old"


def quoted(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


def _alembic(engine: Engine, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    config.attributes["schema"] = schema
    return config


def upgrade(engine: Engine, schema: str) -> None:
    """Create ``schema`` if missing and bring its read-model tables to the newest revision (idempotent)."""
    command.upgrade(_alembic(engine, schema), "head")


def check_current(conn: Connection, schema: str, engine: Engine) -> None:
    """Refuse to read or write tables of another revision than this code's."""
    head = ScriptDirectory.from_config(_alembic(engine, schema)).get_current_head()
    current = MigrationContext.configure(
        conn, opts={"version_table": "alembic_version", "version_table_schema": schema}
    ).get_current_revision()
    if current != head:
        raise ProjectionError(
            f"the read models in schema {schema} are at revision {current}, this code needs {head}",
            hint="run `tradecore project` (it migrates on start) or `tradecore rebuild`",
        )


def drop(conn: Connection, schema: str) -> None:
    conn.execute(text(f"DROP SCHEMA IF EXISTS {quoted(schema)} CASCADE"))


def namespace_schemas(conn: Connection, topic_prefix: str) -> list[str]:
    """The Postgres schemas holding a topic namespace's read models: the live one and any rebuild or verify left."""
    live = live_schema(topic_prefix)
    names = [live, shadow_schema(live), scratch_schema(live), old_schema(live)]
    found = conn.execute(
        text("SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(:names)"), {"names": names}
    )
    return sorted(row[0] for row in found)
