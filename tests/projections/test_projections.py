"""`tradecore project` over a whole pipeline's log: each read model equals an independent fold of the events;
SIGKILLed again and again it still leaves exactly that, and `tradecore verify` agrees."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from deploy.local import postgres
from deploy.local.settings import StackSettings
from projections.projectors import PROJECTORS, select
from projections.runner import checkpoints, lag
from tests.projections.conftest import Pipeline
from tests.projections.folds import FOLDS, ORDER_EVENTS
from tests.support.pipeline import start_projector, topic_ends, tradecore
from tests.support.scratch import server_dir
from tests.support.workers import run_with_kills, stop

pytestmark = pytest.mark.integration


def assert_equals_folds(pipeline: Pipeline) -> None:
    for table, fold in FOLDS.items():
        expected = fold(pipeline.log)
        assert expected, f"the log must hold events for {table}"
        found = pipeline.rows(table)
        assert found.keys() == expected.keys(), table
        for key, row in expected.items():
            assert {k: found[key][k] for k in row} == row, (table, key)


def project_until_caught_up(pipeline: Pipeline, log: Path) -> None:
    """Run `tradecore project` until it has read every record, then stop it as an operator would."""
    proc = start_projector(pipeline.endpoints, pipeline.prefix, log)
    try:
        pipeline.wait_caught_up()
    finally:
        assert stop(proc, log) == 0, log.read_text()[-3000:]


def lags(pipeline: Pipeline) -> dict[str, int]:
    """Each projection's lag as readiness checks and metrics see it."""
    ends = {
        (t.removeprefix(pipeline.prefix), p): o
        for (t, p), o in topic_ends(pipeline.kafka, sorted({t for c in PROJECTORS.values() for t in c.topics})).items()
    }
    with pipeline.connect() as conn:
        committed = checkpoints(conn, pipeline.schema) if pipeline.rows_or_none("orders") is not None else {}
    return lag(committed, ends, select(None))


def test_each_read_model_equals_an_independent_fold_of_the_log(fresh: Pipeline, tmp_path: Path) -> None:
    before = lags(fresh)
    assert before["orders"] >= len(fresh.log.of(*ORDER_EVENTS)) and before["candles"] >= len(
        fresh.log.of("TickIngested")
    )
    project_until_caught_up(fresh, tmp_path / "project.log")
    assert_equals_folds(fresh)
    # Caught up, what is left is at most a transaction marker at the end of each partition.
    after = lags(fresh)
    assert all(after[name] <= 6 * len(PROJECTORS[name].topics) for name in PROJECTORS), after
    trail = [r for r in fresh.rows("order_events").values() if r["event_type"] == "OrderFilled"]
    assert all(r["causation_id"] and r["correlation_id"] for r in trail), "fills name their cause"


def test_sigkilled_again_and_again_the_read_models_are_exact_and_verify_agrees(fresh: Pipeline, tmp_path: Path) -> None:
    landed = run_with_kills(
        # Small transactions, so that kills land between many commits.
        lambda: start_projector(fresh.endpoints, fresh.prefix, tmp_path / "project.log", "--batch-size", "40"),
        fresh.caught_up,
        kills=5,
        interval_s=(2.0, 4.0),
    )
    assert landed >= 3, "most kills must hit a working process"
    assert_equals_folds(fresh)
    verified = tradecore(fresh.endpoints, fresh.prefix, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 differences" in verified.stdout


def test_verify_names_a_row_that_differs_and_exits_non_zero(fresh: Pipeline, tmp_path: Path) -> None:
    project_until_caught_up(fresh, tmp_path / "project.log")
    some: Any = next(iter(fresh.rows("positions")))
    with fresh.connect() as conn:
        conn.execute(
            f'UPDATE "{fresh.schema}".positions SET quantity = quantity + 1 WHERE account_id = %s AND instrument = %s',
            some,
        )
        conn.execute(
            f'DELETE FROM "{fresh.schema}".fills WHERE "offset" = (SELECT min("offset") FROM "{fresh.schema}".fills)'
        )
    verified = tradecore(fresh.endpoints, fresh.prefix, "verify")
    assert verified.returncode == 1
    assert f"positions {some!r}: quantity live" in verified.stderr
    assert "fills" in verified.stderr and "missing from the live table" in verified.stderr
    assert "2 rows differ" in verified.stderr


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_a_postgres_stop_and_start_mid_run_loses_nothing(fresh: Pipeline, tmp_path: Path, crash: bool) -> None:
    # Crashed: the runner commits without waiting for the disk (synchronous_commit off), so the crash may undo its
    # last transactions, rows and checkpoints together; it must read those records again, not skip them.
    # A throwaway server of our own: stopping the shared stack's Postgres would break everyone else's tests.
    with server_dir("pg-restart-") as directory:
        stack = StackSettings(stack_dir=directory)
        url = postgres.url(postgres.start(stack))
        own = fresh.on(url)
        proc = start_projector(
            fresh.endpoints, fresh.prefix, tmp_path / "project.log", "--batch-size", "40", DATABASE_URL=url
        )
        try:
            deadline = time.monotonic() + 120
            while not own.rows_or_none("order_events"):
                assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "project.log").read_text()
                time.sleep(0.2)
            assert not own.caught_up(), "the stop must land mid-run"
            postgres.stop(stack, crash=crash)
            time.sleep(3)  # the runner meets a dead server for a while
            assert proc.poll() is None, "the runner must wait for Postgres, not die"
            postgres.start(stack)
            own.wait_caught_up()
            assert "Postgres" in (tmp_path / "project.log").read_text(), "the outage must have been met"
            assert_equals_folds(own)
        finally:
            stop(proc, tmp_path / "project.log")
            postgres.stop(stack)


def test_two_runners_at_once_still_leave_each_event_projected_once(fresh: Pipeline, tmp_path: Path) -> None:
    # A zombie and its replacement, say: each batch's checkpoints are compare-and-set, so one of them always
    # finds the other's checkpoints and carries on from there instead of writing twice.
    runners = [
        start_projector(fresh.endpoints, fresh.prefix, tmp_path / f"project-{i}.log", "--batch-size", "100")
        for i in range(2)
    ]
    try:
        fresh.wait_caught_up()
    finally:
        for i, proc in enumerate(runners):
            stop(proc, tmp_path / f"project-{i}.log")
    logs = "".join((tmp_path / f"project-{i}.log").read_text() for i in range(2))
    assert "Traceback" not in logs
    assert "moved under this runner" in logs, "the runners must have met"
    assert_equals_folds(fresh)
