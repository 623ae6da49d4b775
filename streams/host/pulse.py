"""Where a host's thread is when its loop has stopped coming round.

The host's watchdog (``streams.host.watchdog``) runs in the host's own loop: it notices a consumer that fetches
nothing, but not a call that never returns. tests/deploy/test_broker_loss.py saw risk take nothing for minutes after
a broker was killed, with no restart and not a word from the watchdog, so either the loop stopped or it found
nothing to wait on. The worker's reporting thread asks each host when its loop last came round; one that has not for
``STUCK_S`` has its thread's stack logged, once a minute at most: a run that went wrong says where in its own log.
A long rebuild (the loop waits on it) is reported the same way: where it is is what an operator wants then too.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback

from streams.host.config import HostStats

log = logging.getLogger("tradecore.streams")

STUCK_S = 60.0
_FRAMES = 8  # the innermost frames of the stack that are logged


class Pulse:
    """Checks hosts' pulses; says where a stuck one's thread is."""

    def __init__(self, stuck_s: float = STUCK_S) -> None:
        self._stuck_s = stuck_s
        self._said: dict[str, float] = {}

    def check(self, name: str, stats: HostStats, thread: threading.Thread) -> None:
        now = time.monotonic()
        quiet = now - stats.pulse
        if quiet < self._stuck_s or now - self._said.get(name, -self._stuck_s) < self._stuck_s:
            return
        frame = sys._current_frames().get(thread.ident) if thread.ident is not None else None
        if frame is None:  # (ended meanwhile)
            return
        self._said[name] = now
        where = "".join(traceback.format_stack(frame)[-_FRAMES:]).rstrip()
        log.warning("%s: its loop has not come round for %.0f s; its thread is at:\n%s", name, quiet, where)
