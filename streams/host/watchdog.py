"""A host's watch on its own progress: a consumer wedged by a broker failing over is replaced, not left idle.

tests/deploy/test_broker_loss.py once saw risk stop taking orders after a broker came back, with no error and no
restart. So once a host has taken no record for ``stall_ms`` while its inputs hold some — fetched and held by the
merger, or not fetched at all (log ends asked of the brokers: a consumer that fetches nothing keeps its cached ones)
— it starts over with new clients from the committed offsets (``StartOver``). Before that, every quarter of
``stall_ms`` it logs what it waits on, so that a run that went wrong says where in its own log; an instance the
group gave no assignment, or no partition, says that instead.
"""

from __future__ import annotations

import logging
import time

from streams.host.decoding import Decoded
from streams.host.fetch import Fetcher
from streams.host.inputs import Inputs
from streams.host.merge import Merger
from streams.host.transaction import StartOver

log = logging.getLogger("tradecore.streams")


class Watchdog:
    def __init__(self, name: str, group: str, stall_ms: int, fetcher: Fetcher, inputs: Inputs) -> None:
        self._name = name
        self._group = group
        self._stall_s = stall_ms / 1000
        self._fetcher = fetcher
        self._inputs = inputs
        self._moved_at = time.monotonic()  # when a record was last taken, or the inputs were last found all read
        self._checked = 0.0
        self._warned = 0.0
        self._said_idle = False

    def moved(self) -> None:
        """The host took a record, or went live."""
        self._moved_at = time.monotonic()

    def check(self, merger: Merger[Decoded]) -> None:
        """Called when a pass took nothing: warn, or raise ``StartOver`` once ``stall_ms`` has passed so."""
        now = time.monotonic()
        idle = now - self._moved_at
        if idle < self._stall_s / 4 or now - self._checked < 1.0:
            return
        self._checked = now
        if not self._fetcher.joined:
            self._warn(f"no assignment from the consumer group {self._group} after {idle:.0f} s")
            return
        if not self._fetcher.holds_any():
            # (an instance beyond the partition count holds none, rightly: said once a session, not every time)
            if not self._said_idle:
                self._said_idle = True
                log.info("%s: holds no partition %.0f s after subscribing to its group", self._name, idle)
            return
        waiting = self._fetcher.unfetched()
        if merger.buffered():
            waiting.append(f"{merger.buffered()} record(s) fetched and held")
            waiting += [
                f"{self._inputs.topics[rank]}[{partition}] not yet read to its end"
                for rank, partition in merger.empty()
                if not self._fetcher.caught_up((rank, partition))
            ]
        if not waiting:
            self._moved_at = now  # idle: everything there is has been taken
            return
        if idle >= self._stall_s:
            raise StartOver(f"no record taken for {idle:.0f} s though the inputs hold some: {waiting}")
        self._warn(
            f"no record taken for {idle:.0f} s though the inputs hold some: {waiting} "
            f"(starting over at {self._stall_s:.0f} s)"
        )

    def _warn(self, what: str) -> None:
        """Say what the host waits on, every quarter of ``stall_ms`` at most."""
        if time.monotonic() - self._warned >= self._stall_s / 4:
            self._warned = time.monotonic()
            log.warning("%s: %s", self._name, what)
