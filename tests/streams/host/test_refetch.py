"""A record a consumer hands over a second time since the host went live — librdkafka has rewound after
pause/resume/seek in its history — is dropped, counted and said, never handled twice."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from streams.host.fetch import Fetcher
from tests.streams.host.test_consumer_errors import Handing
from tests.streams.host.test_grace import Fetched


def offsets(fetcher: Fetcher) -> list[tuple[int, int]]:
    return [(record.partition, record.offset) for record in fetcher.fetch(0)]


def refetched() -> float:
    return REGISTRY.get_sample_value("tradecore_refetched_records_total", {"processor": "risk", "topic": "orders"}) or 0


def test_records_handed_over_again_are_dropped_and_said(fetcher: Fetcher, caplog: pytest.LogCaptureFixture) -> None:
    fetcher.go_live({("orders", 0): 5, ("orders", 1): 0}, [])
    fetcher.group = Handing([Fetched("orders", 0, 5), Fetched("orders", 1, 0), Fetched("orders", 0, 6)])
    assert offsets(fetcher) == [(0, 5), (1, 0), (0, 6)]
    before = refetched()
    # The consumer goes back: partition 0 again from 5 within one batch, and again in the next; 1 goes on.
    fetcher.group = Handing([Fetched("orders", 0, 5), Fetched("orders", 0, 6), Fetched("orders", 0, 7)])
    with caplog.at_level(logging.WARNING, logger="tradecore.streams"):
        assert offsets(fetcher) == [(0, 7)]
        fetcher.group = Handing([Fetched("orders", 1, 1), Fetched("orders", 0, 6), Fetched("orders", 0, 8)])
        assert offsets(fetcher) == [(1, 1), (0, 8)]
    assert refetched() - before == 3
    said = [r.getMessage() for r in caplog.records]
    assert said[0].endswith("dropped 2 records of orders[0] handed over again (offsets 5..6, already taken to 7)")


def test_a_rewind_within_one_batch_is_dropped(fetcher: Fetcher) -> None:
    fetcher.go_live({("orders", 0): 0}, [])
    fetcher.group = Handing([Fetched("orders", 0, 0), Fetched("orders", 0, 1), Fetched("orders", 0, 0)])
    assert offsets(fetcher) == [(0, 0), (0, 1)]


def test_records_before_where_live_reading_began_are_dropped(fetcher: Fetcher) -> None:
    # (a seek that has not taken yet: what the consumer had prefetched from before)
    fetcher.go_live({("orders", 0): 10}, [])
    fetcher.group = Handing([Fetched("orders", 0, 8), Fetched("orders", 0, 10)])
    assert offsets(fetcher) == [(0, 10)]


def test_going_live_again_takes_records_from_its_new_starts(fetcher: Fetcher) -> None:
    real = fetcher.group
    fetcher.go_live({("orders", 0): 0}, [])
    fetcher.group = Handing([Fetched("orders", 0, 0), Fetched("orders", 0, 1)])
    assert len(offsets(fetcher)) == 2
    fetcher.group = real
    fetcher.go_live({("orders", 0): 1}, [])  # (a rebuild: the state stands after offset 0)
    fetcher.group = Handing([Fetched("orders", 0, 1)])
    assert offsets(fetcher) == [(0, 1)]
