"""A transactional producer's commit runs on a thread of its own, and each of its calls into librdkafka must come back
within the bound: one that does not (librdkafka#5456) is named and given up on, however long the commit as a whole
may take, and whatever the commit raises reaches the caller as it was raised."""

from __future__ import annotations

import threading
import time

import pytest

from streams.kafka.transactions import _Caller, _Stuck

STEP_S = 0.3


def test_a_step_that_does_not_come_back_is_named_and_given_up_on() -> None:
    caller, never = _Caller("test-transactions"), threading.Event()

    def commit() -> None:
        caller.step("send_offsets_to_transaction")
        never.wait()

    began = time.monotonic()
    with pytest.raises(_Stuck, match="send_offsets_to_transaction"):
        caller.call(commit, STEP_S)
    assert STEP_S <= time.monotonic() - began < STEP_S + 5
    never.set()


def test_steps_each_within_the_bound_may_add_up_past_it() -> None:
    caller, done = _Caller("test-transactions"), []

    def commit() -> None:
        for attempt in range(4):
            caller.step(f"commit_transaction, attempt {attempt}")
            time.sleep(STEP_S / 3)
        done.append(True)

    caller.call(commit, STEP_S)  # 4 * STEP_S / 3 in all
    assert done == [True]
    caller.close()


def test_what_the_call_raises_reaches_the_caller() -> None:
    caller = _Caller("test-transactions")

    def commit() -> None:
        raise TimeoutError("the broker timed out")  # (what a wait on a future raises too: not taken for stuck)

    with pytest.raises(TimeoutError, match="the broker timed out"):
        caller.call(commit, STEP_S)
    caller.call(lambda: None, STEP_S)  # and the thread goes on serving
    caller.close()
