"""The psycopg connection pool the read models are queried through (``projections.queries.ReadModels``)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.string import TextLoader
from psycopg_pool import AsyncConnectionPool

from projections.db import autocommit_pool
from projections.settings import DatabaseSettings

APPLICATION_NAME = "tradecore-read-models"  # how an operator tells these connections apart in pg_stat_activity


async def _configure(conn: AsyncConnection[Any]) -> None:
    # A numeric arrives as Postgres's own text — plain notation, every digit — which is already how the answers
    # render an exact decimal: no Decimal built per value only to be formatted back.
    conn.adapters.register_loader("numeric", TextLoader)


def read_pool(settings: DatabaseSettings, *, max_size: int = 20) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """A closed pool (``await pool.open()``) of autocommit connections: under READ COMMITTED each statement takes its
    own snapshot anyway, so a BEGIN before a read and a ROLLBACK after it would be two round trips that change
    nothing."""
    return autocommit_pool(settings, "read-models", APPLICATION_NAME, max_size, _configure)
