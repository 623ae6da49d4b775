"""A tick's exchange time must be one Kafka can record and no further ahead of the server clock than the configured
skew: anything else is the client's mistake, a 422 naming the field — never a 503 'retry' that cannot succeed
(issue 12, F3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

FIELD = "ticks[0].exchange_ts"


def send(api: ApiServer, exchange_ts: str) -> tuple[int, list[tuple[str, str]]]:
    tick = {"instrument": "EURUSD", "bid": "1.12120", "ask": "1.12172", "exchange_ts": exchange_ts}
    with api.client("adam") as adam:
        answer = adam.post("/v1/ticks", json={"source": "clock", "ticks": [tick]})
    errors = answer.json().get("errors", []) if answer.status_code != 202 else []
    return answer.status_code, [(e["field"], e["rule"]) for e in errors]


def ahead(delta: timedelta | str) -> str:
    """``delta`` from now, taken when the tick is sent; a string is sent as it is."""
    return delta if isinstance(delta, str) else (datetime.now(UTC) + delta).isoformat()


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        ("9999-12-31T00:00:00Z", "tick.ahead"),
        (timedelta(hours=2), "tick.ahead"),
        (timedelta(minutes=10), "tick.ahead"),
        (timedelta(seconds=30), "tick.ahead"),
        ("1969-12-31T23:59:59Z", "tick.range"),
        ("0001-01-01T00:00:00Z", "tick.range"),
    ],
    ids=["year 9999", "2 h ahead", "10 min ahead", "30 s ahead", "before the epoch", "year 1"],
)
def test_an_exchange_time_kafka_cannot_take_or_too_far_ahead_is_422(
    api: ApiServer, when: timedelta | str, rule: str
) -> None:
    assert send(api, ahead(when)) == (422, [(FIELD, rule)])


def test_an_exchange_time_within_the_skew_or_in_the_past_is_taken(api: ApiServer) -> None:
    assert send(api, ahead(timedelta(seconds=1)))[0] == 202
    assert send(api, "2020-01-01T17:00:00Z")[0] == 202


def test_an_exchange_time_in_another_offset_is_the_same_instant(api: ApiServer) -> None:
    # Prices as JSON numbers take the per-tick path, where another offset once answered 500.
    for bid in ("1.12120", 1.1212):
        tick = {"instrument": "EURUSD", "bid": bid, "exchange_ts": "2020-01-01T19:00:00+02:00"}
        with api.client("adam") as adam:
            answer = adam.post("/v1/ticks", json={"source": "clock", "ticks": [tick]})
        assert answer.status_code == 202, answer.text
