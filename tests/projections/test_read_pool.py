"""The read models' psycopg pool over a real Postgres: a read still answers after its pooled connections were cut
(what a Postgres restart does to them), since they are not pinged before each use."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from deploy.local.stack import Endpoints
from projections import db, namespace, tables
from projections.queries import ReadModels
from projections.readpool import read_pool
from projections.settings import DatabaseSettings
from projections.statements import Condition

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(endpoints: Endpoints) -> DatabaseSettings:
    return DatabaseSettings(url=endpoints.database_url)


@pytest.fixture
def schema(settings: DatabaseSettings) -> Iterator[str]:
    """An empty read-model schema of its own."""
    name = f"read_pool_{uuid.uuid4().hex[:8]}"
    engine = db.engine(settings)
    try:
        namespace.upgrade(engine, name)
        yield name
    finally:
        with engine.begin() as conn:
            namespace.drop(conn, name)
        engine.dispose()


def _cut(settings: DatabaseSettings, pids: list[int]) -> int:
    with psycopg.connect(db.conninfo(settings), autocommit=True) as conn:
        cut = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid = ANY(%s)",
            (pids,),
        ).fetchone()
    return int(cut[0]) if cut else 0


def test_a_read_answers_after_its_pooled_connections_were_cut(settings: DatabaseSettings, schema: str) -> None:
    async def run() -> tuple[int, list[object], list[object]]:
        async with read_pool(settings, max_size=2) as pool:
            reads = ReadModels(pool, schema)
            where = [Condition("account_id", "any", ["ACC-1"])]
            before = (await reads.page("positions", tables.positions, where=where)).document()["items"]
            async with pool.connection() as one, pool.connection() as two:  # the pool's every connection
                pids = [one.info.backend_pid, two.info.backend_pid]
            cut = await asyncio.to_thread(_cut, settings, pids)
            after = (await reads.page("positions", tables.positions, where=where)).document()["items"]
            return cut, before, after

    cut, before, after = asyncio.run(run())
    assert cut == 2
    assert before == after == []
