"""Asking where partitions end rides out a leader moving, and gives up with a named error when Kafka stays away."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest

from streams.kafka import KafkaError, KafkaException, KafkaSettings, clients, logreader
from streams.kafka.logreader import LogEndUnknown, LogReader


@dataclass
class _Offset:
    offset: int


class _Admin:
    """Answers ``list_offsets`` with the given errors first, then with offset 42 for every partition."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.asked = 0

    def list_offsets(self, wanted: dict[Any, Any], **_: Any) -> dict[Any, Future[_Offset]]:
        self.asked += 1
        answers = {}
        for tp in wanted:
            future: Future[_Offset] = Future()
            if self.errors:
                future.set_exception(KafkaException(KafkaError(self.errors[0])))
            else:
                future.set_result(_Offset(42))
            answers[tp] = future
        if self.errors:
            self.errors.pop(0)
        return answers


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted broker answers at once: ask again after 10 ms, not the half second a real leader election gets."""
    monkeypatch.setattr(logreader, "LEADER_RETRY_S", 0.01)


def reader_with(admin: _Admin, monkeypatch: pytest.MonkeyPatch) -> LogReader:
    monkeypatch.setattr(logreader, "shared_admin", lambda settings: admin)  # the broker's answers, scripted
    return LogReader(KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t."), "ends-test")


@pytest.mark.parametrize(
    "moving",
    [KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.NOT_LEADER_FOR_PARTITION],
)
@pytest.mark.usefixtures("quick_retries")
def test_a_leader_moving_is_asked_again_until_it_answers(moving: int, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _Admin(moving, moving)
    reader = reader_with(admin, monkeypatch)
    try:
        assert reader.ends([("t.orders", 0), ("t.orders", 1)], timeout_s=10) == {
            ("t.orders", 0): 42,
            ("t.orders", 1): 42,
        }
    finally:
        reader.close()
    assert admin.asked == 3


def test_an_error_that_will_not_pass_is_raised_at_once_naming_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _Admin(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    reader = reader_with(admin, monkeypatch)
    try:
        with pytest.raises(LogEndUnknown, match="could not ask Kafka where the partitions end"):
            reader.ends([("t.orders", 0)], timeout_s=10)
    finally:
        reader.close()
    assert admin.asked == 1


def test_a_leader_that_never_settles_gives_up_after_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    admin = _Admin(*[KafkaError.FENCED_LEADER_EPOCH] * 100)
    reader = reader_with(admin, monkeypatch)
    try:
        with pytest.raises(LogEndUnknown, match="FENCED_LEADER_EPOCH"):
            reader.ends([("t.orders", 0)], timeout_s=1.2)
    finally:
        reader.close()
    assert 2 <= admin.asked < 100


@pytest.mark.usefixtures("quick_retries")
def test_a_client_that_keeps_answering_a_stale_leader_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a broker came back, the shared client answered FENCED_LEADER_EPOCH for as long as it was asked (its
    leaders' epochs stale): the next ask goes to a new client, which knows the leaders as they are now."""
    stale, fresh = _Admin(*[KafkaError.FENCED_LEADER_EPOCH] * 100), _Admin()
    made: list[_Admin] = []
    monkeypatch.setattr(clients, "admin", lambda settings: made.pop(0))
    made += [stale, fresh]
    reader = LogReader(KafkaSettings(bootstrap_servers="127.0.0.1:2", topic_prefix="t."), "ends-test")
    try:
        assert reader.ends([("t.orders", 0)], timeout_s=10) == {("t.orders", 0): 42}
    finally:
        reader.close()
    assert (stale.asked, fresh.asked) == (1, 1)


def test_only_the_client_in_use_is_renewed() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:3", topic_prefix="t.")
    first = clients.shared_admin(settings)
    assert clients.shared_admin(settings) is first
    clients.renew_shared_admin(settings, first)
    second = clients.shared_admin(settings)
    assert second is not first
    clients.renew_shared_admin(settings, first)  # (another caller had renewed it already)
    assert clients.shared_admin(settings) is second
    clients.renew_shared_admin(settings, second)  # (no client left trying to reach the address)


class _Consumer:
    """Answers ``get_watermark_offsets`` with NOT_LEADER first (a topic whose leader is not elected yet)."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.asked = 0

    def get_watermark_offsets(self, *_: Any, **__: Any) -> tuple[int, int]:
        self.asked += 1
        if self.asked <= self.refusals:
            raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
        return 0, 42

    def close(self) -> None:
        pass


@pytest.mark.usefixtures("quick_retries")
def test_where_a_fresh_partition_starts_and_ends_is_asked_again_until_its_leader_answers() -> None:
    reader = LogReader(KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="t."), "bounds-test")
    real, reader._consumer = reader._consumer, _Consumer(refusals=2)  # type: ignore[assignment]
    try:
        assert reader.bounds(("t.ticks", 1), timeout_s=10) == (0, 42)
    finally:
        real.close()
