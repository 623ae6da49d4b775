"""Stream processors as users run them — `tradecore worker` processes — and the harness that kills them."""

from __future__ import annotations

import random
import signal
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from deploy import launch
from deploy.local.stack import Endpoints


def _env(endpoints: Endpoints, prefix: str) -> dict[str, str]:
    return {**endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}


def start_worker(
    endpoints: Endpoints, prefix: str, names: list[str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    """`tradecore worker` as it starts (tests that kill it mid-start-up want it this early, not once ready)."""
    return launch.start("worker", ["worker", *names, *options], log, _env(endpoints, prefix)).process


def start_worker_with_metrics(
    endpoints: Endpoints, prefix: str, names: list[str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """A worker serving /metrics on a port of its own: (the process, its metrics URL) once it listens there."""
    worker = launch.start_worker(log, _env(endpoints, prefix), names=names)
    return worker.process, f"{worker.url}/metrics"


SLOW_STOP_S = 10.0


def stop(proc: subprocess.Popen[bytes], log: Path | None = None, grace_s: float = 60) -> int:
    """Stop a `tradecore` process as an operator does (SIGTERM) and wait for it; its exit code."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(grace_s)
    warn_if_slow(proc, started, log)
    return code


def warn_if_slow(proc: subprocess.Popen[bytes], started: float, log: Path | None) -> None:
    """Say a stop begun at ``started`` (monotonic) that took over ``SLOW_STOP_S`` as a warning, with what the process
    logged last (pytest lists warnings for passing tests too): rehearsals of `make test` have lost ≈ 30 s at a time,
    once right after a worker's SIGTERM, and no log said where."""
    took = time.monotonic() - started
    if took > SLOW_STOP_S:
        last = said(log) if log is not None else "(no log)"
        warnings.warn(f"pid {proc.pid} took {took:.1f} s to exit after SIGTERM; it logged last:\n{last}", stacklevel=3)


def said(log: Path, lines: int = 12) -> str:
    """What a worker logged last, client chatter (librdkafka's ``%`` lines, HTTP requests) left out: what a failed
    wait shows, so that a run that failed once says where the worker stood."""
    logged = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join([line for line in logged if not line.startswith("%") and "httpx" not in line][-lines:])


def run_with_kills(
    start: Callable[[], subprocess.Popen[bytes]],
    done: Callable[[], bool],
    *,
    kills: int,
    interval_s: tuple[float, float] = (2.0, 5.0),
    seed: int = 7,
    timeout_s: float = 600,
    working: Callable[[int], bool] | None = None,
) -> int:
    """Run a worker, SIGKILL it ``kills`` times at random moments while it works, then let it finish.

    With ``working``, the random delay before kill ``i`` starts only once ``working(i)`` holds (say, once the
    worker has committed a given share of its input), so kills land mid-stream rather than during start-up.
    Returns how many kills landed on a live process. The worker is stopped (SIGTERM) once ``done()``.
    """
    rng = random.Random(seed)
    deadline = time.monotonic() + timeout_s
    landed = 0
    proc = start()
    try:
        for i in range(kills):
            while working is not None and proc.poll() is None and not working(i):
                assert time.monotonic() < deadline, f"the worker did not get to kill {i + 1}'s point in time"
                time.sleep(0.2)
            time.sleep(rng.uniform(*interval_s))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                landed += 1
            proc.wait()
            proc = start()
        while not done():
            assert proc.poll() is None, "the worker died on its own"
            assert time.monotonic() < deadline, "the worker did not finish in time"
            time.sleep(1.0)
        return landed
    finally:
        started = time.monotonic()
        launch.stop(proc)
        warn_if_slow(proc, started, None)
