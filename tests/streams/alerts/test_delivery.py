"""Delivery to a local receiver: retried with backoff on 5xx and while it is down, refused 4xx not retried, every try
signed and keyed, and counted in the metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from streams.alerts.alert import Alert
from streams.alerts.delivery import WebhookSender
from streams.alerts.errors import Interrupted
from streams.alerts.rules import Delivery
from streams.alerts.signing import verify
from tests.streams.alerts.receiver import Receiver

SECRET = b"unit-test-secret-0123"
FAST = Delivery(attempts=4, timeout_s=2, backoff_s=0.05, backoff_max_s=0.2)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


def _alert(receiver: Receiver, rule: str, path: str = "/hook") -> Alert:
    return Alert(f"key-{rule}", rule, "fill", receiver.url(path), b'{"id":"x"}', None)


def _count(name: str, rule: str) -> float:
    return REGISTRY.get_sample_value(f"tradecore_alerts_{name}_total", {"rule": rule}) or 0.0


def test_500s_are_retried_until_taken_each_try_signed_with_the_same_key(receiver: Receiver) -> None:
    receiver.failing = 2
    sender = WebhookSender(SECRET, FAST, threading.Event())
    outcome = sender.send(_alert(receiver, "r500"))
    assert (outcome.attempts, outcome.failure) == (3, None)
    assert [r.status for r in receiver.requests] == [500, 500, 200]
    assert {r.key for r in receiver.requests} == {"key-r500"}
    assert all(verify(SECRET, r.signature, r.body, now=time.time()) for r in receiver.requests)
    assert (_count("sent", "r500"), _count("retried", "r500"), _count("failed", "r500")) == (1, 2, 0)


def test_a_receiver_down_for_a_while_gets_the_alert_once_back(receiver: Receiver) -> None:
    receiver.stop()
    slow = Delivery(attempts=6, timeout_s=2, backoff_s=0.2, backoff_max_s=0.4)
    threading.Timer(0.5, receiver.start).start()
    outcome = WebhookSender(SECRET, slow, threading.Event()).send(_alert(receiver, "down"))
    assert outcome.failure is None and outcome.attempts > 1
    assert [r.status for r in receiver.requests] == [200]


def test_after_the_last_try_the_failure_says_why_and_a_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.broken_paths.add("/broken")
    sender = WebhookSender(SECRET, FAST, threading.Event())
    outcome = sender.send(_alert(receiver, "broken", "/broken"))
    assert outcome.failure == "the receiver answered 500 Internal Server Error (after 4 tries)"
    assert (_count("retried", "broken"), _count("failed", "broken")) == (3, 1)
    refused = sender.send(_alert(receiver, "gone", "/gone-404"))
    assert refused.attempts == 1 and refused.failure is not None and "404" in refused.failure


def test_a_stop_between_tries_leaves_the_alert_unsent_rather_than_failed(receiver: Receiver) -> None:
    receiver.broken_paths.add("/broken")
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    patient = Delivery(attempts=5, timeout_s=2, backoff_s=5, backoff_max_s=5)
    with pytest.raises(Interrupted):
        WebhookSender(SECRET, patient, stop).send(_alert(receiver, "stopped", "/broken"))
    assert _count("failed", "stopped") == 0
