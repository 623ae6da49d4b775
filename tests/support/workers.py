"""Stream processors as users run them — `tradecore worker` processes — and the harness that kills them."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from deploy.local.stack import Endpoints
from streams import pipeline
from tests.support.ports import free_port_block, listening


def start_worker(
    endpoints: Endpoints, prefix: str, names: list[str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    with log.open("ab") as out:
        return subprocess.Popen([tradecore, "worker", *names, *options], env=env, stdout=out, stderr=subprocess.STDOUT)


def start_worker_with_metrics(
    endpoints: Endpoints, prefix: str, names: list[str], log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """A worker serving /metrics on a port of its own: (the process, its metrics URL) once it listens there.

    Ports are picked below the ephemeral range, and a port another process takes first is tried again."""
    for _ in range(5):
        port = free_port_block((0,), start=random.randrange(24000, 28000))
        proc = start_worker(endpoints, prefix, names, log, "--metrics-port", str(port))
        deadline = time.monotonic() + 60
        while proc.poll() is None and not listening(proc.pid, port):
            assert time.monotonic() < deadline, f"the worker did not serve metrics: {log.read_text()}"
            time.sleep(0.2)
        if proc.poll() is None:
            return proc, f"http://127.0.0.1:{port}/metrics"
        assert "cannot serve metrics" in log.read_text(), f"the worker exited: {log.read_text()}"
    raise AssertionError("no free port for the worker's metrics after 5 tries")


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
        pipeline.stop(proc)
