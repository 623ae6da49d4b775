"""An idle host waits for its next record in the consumer, not in a loop: librdkafka counts a wait in whole
milliseconds, so a host asking it to wait the last fraction of one before its deadline got an answer at once and
asked again until the deadline had passed — ≈ 150 empty polls a wait, a hundredth of a core for each idle host."""

from __future__ import annotations

import math
import time
from typing import Any

from streams.host.fetch import Fetcher


class Quiet:
    """A group consumer with nothing to hand over, that waits as librdkafka does: the timeout rounded down to whole
    milliseconds (confluent-kafka's conversion), so one under a millisecond returns at once."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def poll(self, timeout: float) -> None:
        self.asked.append(timeout)
        time.sleep(math.floor(timeout * 1000) / 1000)


def test_a_wait_for_a_first_record_is_spent_in_the_consumer_not_in_empty_polls(fetcher: Fetcher) -> None:
    quiet = Quiet()
    fetcher.group = quiet
    began = time.monotonic()
    for _ in range(4):
        assert fetcher.fetch(0.05) == []
    waited = time.monotonic() - began
    assert waited >= 4 * 0.048, waited  # it still waits out its time for a record
    # Every wait asked of the consumer is one it really waits (a millisecond or more), and a few make each fetch.
    assert min(quiet.asked) >= 0.001, sorted(quiet.asked)[:5]
    assert len(quiet.asked) <= 4 * 2, len(quiet.asked)
