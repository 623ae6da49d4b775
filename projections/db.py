"""SQLAlchemy engines for the read side, always on psycopg 3, and psycopg's own connections and pools."""

from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from projections.settings import DatabaseSettings


def engine(settings: DatabaseSettings) -> Engine:
    url = make_url(settings.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=settings.pool_size, pool_pre_ping=True)


def conninfo(settings: DatabaseSettings) -> str:
    """The libpq connection string of ``settings.url``, for psycopg's own connections (COPY, the runner)."""
    return make_url(settings.url).set(drivername="postgresql").render_as_string(hide_password=False)


def autocommit_pool(
    settings: DatabaseSettings,
    name: str,
    application_name: str,
    max_size: int,
    configure: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A closed pool (``await pool.open()``) of autocommit connections to ``settings``' database, named ``name``;
    ``application_name`` is how an operator tells its connections apart in pg_stat_activity."""
    return AsyncConnectionPool(
        conninfo(settings),
        min_size=2,
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": application_name},
        configure=configure,
        timeout=settings.connection_wait_s,
        open=False,
        name=name,
    )
