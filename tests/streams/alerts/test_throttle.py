"""The minimum interval between two alerts of one rule, and its state surviving a restart."""

from __future__ import annotations

from streams.alerts.throttle import Throttle


def test_a_rule_alerts_at_most_once_per_interval_of_event_time() -> None:
    throttle = Throttle({"slow": 60_000, "every": 0})
    assert [throttle.admit("slow", t) for t in (0, 10_000, 59_999, 60_000, 70_000, 130_000)] == [
        True,
        False,
        False,
        True,
        False,
        True,
    ]
    assert all(throttle.admit("every", 5) for _ in range(3))  # no interval: every event alerts


def test_event_time_stepping_back_across_partitions_is_still_within_the_interval() -> None:
    throttle = Throttle({"slow": 60_000})
    assert throttle.admit("slow", 100_000)
    assert not throttle.admit("slow", 50_000)  # an older record of another partition, 50 s before the last alert
    assert throttle.admit("slow", 30_000)


def test_a_restart_restores_what_was_committed_and_drops_rules_gone_from_the_file() -> None:
    before = Throttle({"slow": 60_000, "gone": 60_000, "every": 0})
    for rule in ("slow", "gone", "every"):
        before.admit(rule, 1_000)
    after = Throttle({"slow": 60_000})
    after.restore(before.state())
    assert not after.admit("slow", 30_000)  # suppressed as the crashed run would have
    assert after.state() == {"slow": 1000}
