"""SQLAlchemy engines for the read side, always on psycopg 3; psycopg's own connections and pools, and how often the
log says their failed attempts to reconnect."""

import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff
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


class FailuresThinned(logging.Filter):
    """A retried connection's failures, said once each ``every_s`` with the count of those held back: the warnings
    whose message starts with ``prefix`` — per value of their first argument when ``by_first_arg`` (psycopg_pool's
    name each pool so), else all as one. Every other message passes. While Postgres is down the pools try each lost
    connection every ``RECONNECT_EVERY_S`` and the live feed listens again each second: said in full, that buried
    everything else in the log (96 warnings in 9 s from one API)."""

    def __init__(
        self,
        prefix: str,
        *,
        by_first_arg: bool = False,
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefix = prefix
        self._by_first_arg = by_first_arg
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._said: dict[object, tuple[float, int]] = {}  # per key: when last said, failures held back since

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self._prefix)):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = args[0] if self._by_first_arg and args else None
        now = self._clock()
        with self._lock:
            said, held = self._said.get(key, (-math.inf, 0))
            if now - said < self._every_s:
                self._said[key] = (said, held + 1)
                return False
            self._said[key] = (now, 0)
        if held:
            record.msg += f" ({held} more failed attempts in the last {now - said:.0f} s not shown)"
        return True


_POOL_LOG = logging.getLogger("psycopg.pool")
_THINNED = FailuresThinned("error connecting in", by_first_arg=True)


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
