"""`tradecore rebuild` while a projector runs and clients query: they keep getting whole answers from the old
tables, then from the rebuilt ones; the runner carries on from the rebuilt checkpoints; verify finds 0 differences."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from projections import tables
from projections.db import engine
from projections.projectors import select
from projections.rebuild import rebuild, verify
from projections.settings import DatabaseSettings
from tests.projections.conftest import Pipeline
from tests.projections.folds import FOLDS
from tests.projections.test_queries import place
from tests.support.api_server import ApiServer, api_server
from tests.support.pipeline import start_projector, tradecore
from tests.support.workers import stop

pytestmark = pytest.mark.integration


@pytest.fixture
def running(fresh: Pipeline, tmp_path: Path) -> Iterator[tuple[ApiServer, Path]]:
    with api_server(fresh.endpoints, tmp_path, fresh.prefix, TRADECORE_RATE_LIMIT="1000/second") as api:
        log = tmp_path / "project.log"
        proc = start_projector(fresh.endpoints, fresh.prefix, log)
        try:
            fresh.wait_caught_up()
            yield api, log
        finally:
            stop(proc, log)


def test_a_rebuild_swaps_in_while_queries_and_the_runner_go_on(
    fresh: Pipeline, running: tuple[ApiServer, Path]
) -> None:
    api, runner_log = running
    positions = len(FOLDS["positions"](fresh.log))
    seconds = min(1000, sum(key[1] == "1s" for key in FOLDS["candles"](fresh.log)))
    answers: list[tuple[int, int, int]] = []
    rebuilt_now = threading.Event()

    def query() -> None:
        with api.client("vera") as vera:
            while not rebuilt_now.is_set():
                a = vera.get("/v1/positions", params={"limit": 1000})
                b = vera.get("/v1/candles", params={"instrument": "BTCUSDT", "timeframe": "1s", "limit": 1000})
                answers.append((a.status_code, len(a.json().get("items", [])), len(b.json().get("items", []))))

    clients = [threading.Thread(target=query) for _ in range(2)]
    for client in clients:
        client.start()
    try:
        rebuilt = tradecore(fresh.endpoints, fresh.prefix, "rebuild")
    finally:
        rebuilt_now.set()
        for client in clients:
            client.join(60)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "swapped in" in rebuilt.stdout and "events/s" in rebuilt.stdout
    assert len(answers) > 10, "queries must run throughout the rebuild"
    # Never an error, never a half-built model: every answer is the whole read model.
    assert set(answers) == {(200, positions, seconds)}

    # The runner carried on over the swapped-in tables and still serves new writes.
    order_id, event, _ = place(api)
    with api.client("alice") as alice:
        token = f"{event['topic']}:{event['partition']}:{event['offset']}"
        assert alice.get(f"/v1/orders/{order_id}", params={"min_offset": token}).status_code == 200
    assert "Traceback" not in runner_log.read_text()
    verified = tradecore(fresh.endpoints, fresh.prefix, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_rebuilding_one_projection_leaves_the_others_alone(fresh: Pipeline, running: tuple[ApiServer, Path]) -> None:
    before = fresh.rows("orders")
    with fresh.connect() as conn:  # damage both: the rebuild must mend positions only
        conn.execute(f'DELETE FROM "{fresh.schema}".positions')
        conn.execute(f'UPDATE "{fresh.schema}".orders SET events = events + 100')
    rebuilt = tradecore(fresh.endpoints, fresh.prefix, "rebuild", "positions")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert fresh.rows("positions").keys() == FOLDS["positions"](fresh.log).keys()
    assert all(row["events"] == before[key]["events"] + 100 for key, row in fresh.rows("orders").items())
    unknown = tradecore(fresh.endpoints, fresh.prefix, "rebuild", "nonsense")
    assert unknown.returncode == 2 and "no projection called 'nonsense'" in unknown.stderr


def test_a_rebuild_in_processes_of_its_own_equals_one_in_a_single_process(fresh: Pipeline) -> None:
    # Read models that share no topic replay in processes of their own (big replays do by default): the same rows,
    # the same checkpoints. (The topics may hold more than fresh.log by now: other tests place orders.)
    db = engine(DatabaseSettings(url=fresh.endpoints.database_url))
    names = [t.name for p in select(None) for t in p.tables]

    def snapshot() -> dict[str, Any]:
        found: dict[str, Any] = {name: fresh.rows(name) for name in names}
        found["checkpoints"] = {
            key: row["offset"] for key, row in fresh.rows(tables.projection_checkpoints.name).items()
        }
        return found

    try:
        assert rebuild(select(None), fresh.kafka, fresh.registry, db, fresh.conninfo, workers=1) > 0
        alone = snapshot()
        assert all(alone[name] for name in ("orders", "order_events", "fills", "positions", "pnl", "candles"))
        assert rebuild(select(None), fresh.kafka, fresh.registry, db, fresh.conninfo, workers=2) > 0
        assert snapshot() == alone
        assert verify(select(None), fresh.kafka, fresh.registry, db, fresh.conninfo, workers=3) == []
    finally:
        db.dispose()
