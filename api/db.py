"""Database plumbing of the API: the async engine and the write side's migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.errors import ConfigurationError
from api.store import SCHEMA

MIGRATIONS = Path(__file__).with_name("migrations")


def _url(database_url: str) -> str:
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def _alembic(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", _url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Bring the write side's tables to the newest revision (idempotent)."""
    command.upgrade(_alembic(database_url), "head")


def check_current(database_url: str) -> None:
    """Refuse to serve against tables of another revision."""
    head = ScriptDirectory.from_config(_alembic(database_url)).get_current_head()
    engine = create_engine(_url(database_url))
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn, opts={"version_table_schema": SCHEMA}).get_current_revision()
    finally:
        engine.dispose()
    if current != head:
        raise ConfigurationError(
            f"the write-side tables are at revision {current}, this code needs {head}",
            hint="run `tradecore db upgrade`",
        )


def async_engine(database_url: str, *, connection_wait_s: float, pool_size: int = 20) -> AsyncEngine:
    """The API's SQLAlchemy engine (idempotency keys, readiness, the live feed); a checkout waits at most
    ``connection_wait_s``, then the API answers 503."""
    return create_async_engine(
        _url(database_url), pool_size=pool_size, max_overflow=10, pool_pre_ping=True, pool_timeout=connection_wait_s
    )
