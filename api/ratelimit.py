"""Rate limits with the ``limits`` library. Orders and ticks use its sliding window counter: the weighted counts
of the current and the previous window, O(1) per request (a moving window keeps a timestamp per request, which at
thousands of orders a second costs more than the order itself). The counter is an approximation: a burst across a
window boundary may pass a few requests more. Low limits on costly or sensitive requests (logins, history
replays) use the exact moving window, where N per minute means N in any 60 seconds.

Counters live in this process (``MemoryStorage``); with several API processes each enforces the limit on its
own share, so the effective limit is the limit times the workers. A shared limit needs a shared storage
(``limits`` supports Redis).
"""

from __future__ import annotations

import math
import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.strategies import RateLimiter as Strategy

from api.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: str, scope: str, *, exact: bool = False) -> None:
        self._item = limits.parse(rate)
        strategy: type[Strategy] = MovingWindowRateLimiter if exact else SlidingWindowCounterRateLimiter
        self._limiter = strategy(MemoryStorage())
        self._scope = scope

    def hit(self, key: str) -> None:
        """Count one request for ``key``; RateLimited (429, with Retry-After) once the window is full."""
        if not self._limiter.hit(self._item, self._scope, key):
            reset = self._limiter.get_window_stats(self._item, self._scope, key).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"{self._scope} {key} is over its limit of {self._item}", retry_after_s=retry_after)
