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


def start_worker(
    endpoints: Endpoints, prefix: str, names: list[str], log: Path, *options: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    with log.open("ab") as out:
        return subprocess.Popen([tradecore, "worker", *names, *options], env=env, stdout=out, stderr=subprocess.STDOUT)


def run_with_kills(
    start: Callable[[], subprocess.Popen[bytes]],
    done: Callable[[], bool],
    *,
    kills: int,
    interval_s: tuple[float, float] = (2.0, 5.0),
    seed: int = 7,
    timeout_s: float = 600,
) -> int:
    """Run a worker, SIGKILL it ``kills`` times at random moments while it works, then let it finish.

    Returns how many kills landed on a live process. The worker is stopped (SIGTERM) once ``done()``.
    """
    rng = random.Random(seed)
    deadline = time.monotonic() + timeout_s
    landed = 0
    proc = start()
    try:
        for _ in range(kills):
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
