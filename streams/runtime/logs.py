"""A failure retried again and again, said now and then: its first time, then once per interval with the count of
those held back — instead of a line per attempt burying everything else in the log."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable


class FailuresThinned(logging.Filter):
    """The messages starting with ``prefix``, said once each ``every_s`` per key, with the count of those held back
    since; the key is their first ``key_args`` arguments (0: all of them as one). Every other message passes.

    Where it serves: the API's psycopg pools, which try each lost connection every half second while Postgres is down
    (96 warnings in a 9 s outage, said in full); the live feed, listening again each second; a processor host's
    consumer errors, which librdkafka retries on its own."""

    def __init__(
        self,
        prefix: str,
        *,
        key_args: int = 0,
        every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefix = prefix
        self._key_args = key_args
        self._every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._said: dict[object, tuple[float, int]] = {}  # per key: when last said, failures held back since

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self._prefix)):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = args[: self._key_args]
        now = self._clock()
        with self._lock:
            said, held = self._said.get(key, (-math.inf, 0))
            if now - said < self._every_s:
                self._said[key] = (said, held + 1)
                return False
            self._said[key] = (now, 0)
        if held:
            record.msg += f" ({held} more failed attempts in the last {now - said:.0f} s not shown)"
        return True
