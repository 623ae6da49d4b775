"""SQLAlchemy engines for the read side, always on psycopg 3; psycopg's own connections and pools, and how often the
log says their failed attempts to reconnect."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from projections.settings import DatabaseSettings
from streams.runtime.logs import FailuresThinned


def engine(settings: DatabaseSettings) -> Engine:
    url = make_url(settings.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=settings.pool_size, pool_pre_ping=True)


def conninfo(settings: DatabaseSettings) -> str:
    """The libpq connection string of ``settings.url``, for psycopg's own connections (COPY, the runner)."""
    return make_url(settings.url).set(drivername="postgresql").render_as_string(hide_password=False)


RECONNECT_EVERY_S = 0.5  # at most this long between a pool's attempts to replace a connection Postgres dropped


class _SteadyAttempt(AttemptWithBackoff):
    """psycopg_pool's attempts to replace a lost connection, their backoff capped at ``RECONNECT_EVERY_S``.

    psycopg_pool doubles the wait between attempts from 1 s (no setting reaches it): after ten seconds of a Postgres
    restart or failover its next attempt is 8 s away, and every request waits for it, then is refused (503) while
    Postgres already answers. An attempt refused by a server that is down costs a refused TCP connection."""

    INITIAL_DELAY = 0.1

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_EVERY_S)


class _RecoveringPool(AsyncConnectionPool[AsyncConnection[Any]]):
    """A pool whose lost connections are tried again every ``RECONNECT_EVERY_S`` until ``reconnect_timeout``."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing)


_POOL_LOG = logging.getLogger("psycopg.pool")
_THINNED = FailuresThinned("error connecting in", key_args=1)  # psycopg_pool names the pool first


def autocommit_pool(
    settings: DatabaseSettings,
    name: str,
    application_name: str,
    max_size: int,
    configure: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A closed pool (``await pool.open()``) of autocommit connections to ``settings``' database, named ``name``;
    ``application_name`` is how an operator tells its connections apart in pg_stat_activity."""
    if _THINNED not in _POOL_LOG.filters:
        _POOL_LOG.addFilter(_THINNED)
    return _RecoveringPool(
        conninfo(settings),
        min_size=2,
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": application_name},
        configure=configure,
        timeout=settings.connection_wait_s,
        open=False,
        name=name,
    )
