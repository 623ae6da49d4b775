"""Per-account command rate limits, with the ``limits`` library's sliding window counter: the weighted counts of
the current and the previous window, O(1) per request (a moving window keeps a timestamp per request, which at
thousands of orders a second costs more than the order itself).

Counters live in this process (``MemoryStorage``); with several API processes each enforces the limit on its
own share, so the effective limit is the limit times the workers. A shared limit needs a shared storage
(``limits`` supports Redis).
"""

from __future__ import annotations

import math
import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api.errors import RateLimited


class RateLimiter:
    def __init__(self, rate: str, scope: str) -> None:
        self._item = limits.parse(rate)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._scope = scope

    def hit(self, key: str) -> None:
        """Count one request for ``key``; RateLimited (429, with Retry-After) once the window is full."""
        if not self._limiter.hit(self._item, self._scope, key):
            reset = self._limiter.get_window_stats(self._item, self._scope, key).reset_time
            retry_after = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"{self._scope} {key} is over its limit of {self._item}", retry_after_s=retry_after)
