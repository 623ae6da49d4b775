"""An input's grace period — how long it must sit at the end of its log before the others go on without it — runs
from when its last record came, not from when the merger ran out of its records: taking a backlog, a partition's
last records come well before their turn, and they must not make every other input wait a grace period more."""

from __future__ import annotations

import time

import pytest

from streams.host.config import HostConfig
from streams.host.fetch import Fetcher
from tests.streams.host.test_consumer_errors import Handing

GRACE_S = HostConfig().grace_ms / 1000


class Fetched:
    """A record as librdkafka hands one over."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._at = (topic, partition, offset)

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._at[0]

    def partition(self) -> int:
        return self._at[1]

    def offset(self) -> int:
        return self._at[2]

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_600_000_000_000 + self._at[2])

    def key(self) -> bytes:
        return b"ACC-1"

    def value(self) -> bytes:
        return b"\x00\x00\x00\x00\x01"

    def headers(self) -> None:
        return None


@pytest.fixture
def read_to_the_end(fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch) -> Fetcher:
    """The fetcher, every input read to the end of its log."""
    monkeypatch.setattr(fetcher, "caught_up", lambda source: True)
    monkeypatch.setattr(fetcher, "_live_at", time.monotonic())  # (as ``go_live`` sets it)
    return fetcher


def test_an_input_whose_last_record_came_a_grace_period_ago_is_done_when_first_asked(read_to_the_end: Fetcher) -> None:
    read_to_the_end.group = Handing([Fetched("orders", 0, 0), Fetched("orders", 0, 1)])
    assert len(read_to_the_end.fetch(0)) == 2
    time.sleep(GRACE_S * 1.2)
    # Its records were held (another input's were older) and never asked about since: it has sat at its end all along.
    assert read_to_the_end.exhausted((0, 0))


def test_an_input_that_gives_a_record_waits_its_grace_period_again_and_nothing_of_another_is_waited_for_twice(
    read_to_the_end: Fetcher,
) -> None:
    time.sleep(GRACE_S * 1.2)
    assert read_to_the_end.exhausted((0, 0)) and read_to_the_end.exhausted((0, 1))  # nothing came since live began
    read_to_the_end.group = Handing([Fetched("orders", 1, 7)])
    read_to_the_end.fetch(0)
    assert not read_to_the_end.exhausted((0, 1))  # it just gave a record: more may be on its way
    assert read_to_the_end.exhausted((0, 0))


def test_an_input_not_read_to_its_end_is_never_done(read_to_the_end: Fetcher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_to_the_end, "caught_up", lambda source: False)
    time.sleep(GRACE_S * 1.2)
    assert not read_to_the_end.exhausted((0, 0))
