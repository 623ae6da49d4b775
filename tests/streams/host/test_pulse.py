"""A host whose loop stopped coming round — its thread blocked in a call that does not return — is reported by the
worker with where that thread is, once a minute at most; a host whose loop comes round is not."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from streams.host.config import HostStats
from streams.host.pulse import Pulse


def blocked_in_a_call_that_never_returns(release: threading.Event) -> None:
    release.wait()


def test_a_host_whose_loop_stopped_is_reported_with_where_its_thread_waits(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    thread = threading.Thread(target=blocked_in_a_call_that_never_returns, args=(release,))
    thread.start()
    try:
        stats = HostStats()
        stats.pulse = time.monotonic() - 61
        pulse = Pulse(stuck_s=60)
        with caplog.at_level(logging.WARNING, logger="tradecore.streams"):
            pulse.check("risk", stats, thread)
            pulse.check("risk", stats, thread)  # (said once a minute at most)
        [said] = [r.getMessage() for r in caplog.records]
        assert said.startswith("risk: its loop has not come round for 61 s"), said
        assert "blocked_in_a_call_that_never_returns" in said and "release.wait()" in said, said
    finally:
        release.set()
        thread.join()


def test_a_host_whose_loop_comes_round_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    stats = HostStats()
    stats.pulse = time.monotonic() - 59
    with caplog.at_level(logging.WARNING, logger="tradecore.streams"):
        Pulse(stuck_s=60).check("risk", stats, threading.current_thread())
    assert caplog.records == []
