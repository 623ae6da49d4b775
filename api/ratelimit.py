"""Rate limits with the ``limits`` library. Orders and ticks use its sliding window counter: the weighted counts
of the current and the previous window, O(1) per request (a moving window keeps a timestamp per request, which at
thousands of orders a second costs more than the order itself). The counter is an approximation: a burst across a
window boundary may pass a few requests more. Low limits on costly or sensitive requests (logins, history
replays) use the exact moving window, where N per minute means N in any 60 seconds.

Sign-ins count failures only (``SignInLimits``), so a user who signs in often is never refused for it.

Counters live in this process (``MemoryStorage``); with several API processes each enforces the limit on its
own share, so the effective limit is the limit times the workers. A shared limit needs a shared storage
(``limits`` supports Redis). Its in-memory storage sweeps expired counters from a thread it starts anew 10 ms after
the last one ended — at 100 orders a second a thread per request, which the API's event loop waited to start (7 % of
its time, py-spy); here it sweeps at most once a second (``_Storage``).
"""

from __future__ import annotations

import math
import threading
import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.strategies import RateLimiter as Strategy

from api.errors import RateLimited


class _Storage(MemoryStorage):
    """``limits``' in-memory storage, sweeping expired counters at most once a second rather than 10 ms after each
    sweep ends. A counter past its expiry is dropped when next read anyway: the sweep only frees the keys nobody asks
    for again, which can wait a second."""

    SWEEP_S = 1.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # the base class's private schedule, which its counters call
        if not self.timer.is_alive():
            self.timer = threading.Timer(self.SWEEP_S, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True  # a pending sweep does not hold the process up on exit
            self.timer.start()


class RateLimiter:
    def __init__(self, rate: str, scope: str, *, exact: bool = False) -> None:
        self._item = limits.parse(rate)
        strategy: type[Strategy] = MovingWindowRateLimiter if exact else SlidingWindowCounterRateLimiter
        self._limiter = strategy(_Storage())
        self._scope = scope

    def hit(self, key: str) -> None:
        """Count one request for ``key``; RateLimited (429, with Retry-After) once the window is full."""
        if not self._limiter.hit(self._item, self._scope, key):
            reset = self._limiter.get_window_stats(self._item, self._scope, key).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"{self._scope} {key} is over its limit of {self._item}", retry_after_s=retry_after)


class SignInLimits:
    """Failed sign-ins, counted per user name *from one client address*, and per client address over all names.

    The first stops guessing at one user's password without letting anyone lock that user out: the real user,
    signing in from another address, is not counted with the guesser. The second stops spraying one guess across
    many names. Each is a list of windows (``10/minute;30/hour``): once a short one is full the caller waits for it,
    and the longer ones make repeated bursts wait longer each time (the backoff). Checked before the password is,
    so a refused attempt costs no hash; counted after it fails. Concurrent attempts that pass the check together
    are all verified, so a burst may exceed a limit by the API's threadpool size, once per window.
    """

    def __init__(self, per_name: str, per_address: str) -> None:
        self._per_name = limits.parse_many(per_name)
        self._per_address = limits.parse_many(per_address)
        self._limiter = MovingWindowRateLimiter(_Storage())

    def _checks(self, name: str, address: str) -> list[tuple[limits.RateLimitItem, tuple[str, ...], str]]:
        return [(item, ("name", address, name), f"{name} from {address}") for item in self._per_name] + [
            (item, ("address", address), f"{address}") for item in self._per_address
        ]

    def check(self, name: str, address: str) -> None:
        """RateLimited (429, with Retry-After) if ``address`` has failed too often, on ``name`` or on any name."""
        waits = [
            (self._limiter.get_window_stats(item, *key).reset_time, item, who)
            for item, key, who in self._checks(name, address)
            if not self._limiter.test(item, *key)
        ]
        if waits:
            reset, item, who = max(waits, key=lambda wait: wait[0])
            retry_after = max(1, math.ceil(reset - time.time()))
            raise RateLimited(
                f"too many failed sign-ins ({who}, limit {item}); retry in {retry_after} s", retry_after_s=retry_after
            )

    def failed(self, name: str, address: str) -> None:
        for item, key, _ in self._checks(name, address):
            self._limiter.hit(item, *key)
