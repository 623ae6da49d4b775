"""The minimum interval between two alerts of one rule, kept so that a restart decides as the crashed run did.

Times are event time (the record's timestamp, which our producers set to the event's time) for events of the log,
so replaying the same records after a crash suppresses the same ones; projection lag, which is no event, uses the
clock. The state is small (one time per rule) and travels with the committed position (``service``).
"""

from __future__ import annotations

from collections.abc import Mapping


class Throttle:
    """When each rule last alerted; ``admit`` lets an alert through if its rule's interval has passed."""

    def __init__(self, intervals_ms: Mapping[str, int]) -> None:
        self._intervals = dict(intervals_ms)
        self._last: dict[str, int] = {}

    def admit(self, rule: str, at_ms: int) -> bool:
        """Whether an alert of ``rule`` at ``at_ms`` may go; if so it is the rule's last alert from now on.

        Records of several partitions interleave, so event time may step back: an alert within the interval on
        either side of the last one is suppressed.
        """
        last = self._last.get(rule)
        if last is not None and abs(at_ms - last) < self._intervals.get(rule, 0):
            return False
        self._last[rule] = at_ms
        return True

    def state(self) -> dict[str, int]:
        """What is committed beside the position: the last alert of each rule that has an interval."""
        return {r: t for r, t in sorted(self._last.items()) if self._intervals.get(r, 0) > 0}

    def restore(self, state: Mapping[str, int]) -> None:
        """Take a committed ``state``; rules no longer in the file are dropped."""
        self._last = {rule: int(at) for rule, at in state.items() if rule in self._intervals}
