"""`POST /v1/ticks` read as columns answers as the model-per-tick route did: the same bytes on the log, the same 422
problems naming each bad tick's index and field; Arrow and Parquet bodies go the same way; other types get 415.

In process, on the in-memory store and log: the reference is the route as it was (FastAPI validating ``IngestTicks``,
then ``CommandGateway.ingest_ticks``), mounted beside it in the same app.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api import deps, problems
from api.auth import Principal, Role
from api.bodies import StrictJsonRoute
from api.ratelimit import RateLimiter
from api.routers import market
from commands.decide import Stamp
from commands.gateway import CommandGateway
from commands.models import IngestTicks
from domain.instruments import InstrumentRegistry
from tests.support.memory import EncodingEventLog, MemoryCommandStore

INSTRUMENTS = InstrumentRegistry.from_file()
STAMP = Stamp(datetime(2026, 12, 3, 12, 0, tzinfo=UTC), "corr-1")
ARROW, PARQUET = "application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"


class Harness:
    """The ticks route and the reference route, each on its own log and store."""

    def __init__(self) -> None:
        self.log, self.reference_log = EncodingEventLog(), EncodingEventLog()
        gateway = CommandGateway(self.log, MemoryCommandStore(), INSTRUMENTS)
        reference = CommandGateway(self.reference_log, MemoryCommandStore(), INSTRUMENTS)
        app = FastAPI()
        problems.install(app)
        app.include_router(market.router)
        market.publish_schemas(app)

        as_it_was = APIRouter(route_class=StrictJsonRoute)

        @as_it_was.post("/reference/ticks", status_code=202)
        async def ingest(command: IngestTicks) -> int:
            return len(await reference.ingest_ticks(command, STAMP))

        app.include_router(as_it_was)

        class Services:
            ticks_limiter = RateLimiter("1000/second", "user")

        Services.gateway = gateway  # type: ignore[attr-defined]
        app.dependency_overrides[deps._services] = Services
        app.dependency_overrides[deps._principal] = lambda: Principal("adam", frozenset({Role.ADMIN}), frozenset())
        app.dependency_overrides[deps._stamp] = lambda: STAMP
        self.http = TestClient(app)

    def both(self, body: dict[str, Any]) -> tuple[Any, Any]:
        return self.http.post("/v1/ticks", json=body), self.http.post("/reference/ticks", json=body)


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    with h.http:
        yield h


def quotes(count: int) -> list[dict[str, Any]]:
    at = datetime(2021, 1, 8, tzinfo=UTC)
    symbols = ("BTCUSDT", "EURUSD", "BTCUSDT", "USDJPY")
    out = []
    for i in range(count):
        symbol = symbols[i % len(symbols)]
        tick = {"instrument": symbol, "exchange_ts": (at + timedelta(milliseconds=7 * i)).isoformat()}
        if symbol == "BTCUSDT":
            tick |= {"bid": f"{39432 + i % 50}.99", "ask": f"{39433 + i % 50}.62", "bid_size": "0.0031"}
        elif symbol == "EURUSD":
            tick |= {"last": "1.12125", "last_size": "1000000", "venue": "ecn-1"}
        else:
            tick |= {"bid": "87.123", "ask": "87.125", "exchange_ts": f"2021-01-08T00:00:0{i % 10}.5Z"}
        out.append(tick)
    return out


PATHS = ("/v1/ticks", "/reference/ticks")
JSON = {"content-type": "application/json"}


def as_number(ticks: list[dict[str, Any]], index: int) -> bytes:
    """The body with tick ``index``'s bid as a JSON number (its text as given), not a string."""
    number = ticks[index]["bid"]
    marked = [t | {"bid": "NUMBER"} if i == index else t for i, t in enumerate(ticks)]
    return json.dumps({"ticks": marked}).replace('"NUMBER"', number).encode()


def problem(answer: Any) -> dict[str, Any]:
    assert answer.headers["content-type"] == "application/problem+json", answer.text
    return {k: v for k, v in answer.json().items() if k != "instance"}


def test_a_batch_lands_as_the_very_bytes_the_per_tick_route_wrote(harness: Harness) -> None:
    body = {"source": "desk-feed", "ticks": quotes(2_000)}
    answer, reference = harness.both(body)
    assert answer.status_code == reference.status_code == 202, answer.text
    assert answer.json()["accepted"] == 2_000
    assert sum(r["count"] for r in answer.json()["ranges"]) == 2_000
    assert harness.log.frames == 1  # encoded in one call
    assert harness.log.values == harness.reference_log.values


def test_sequences_run_on_from_batch_to_batch_per_instrument(harness: Harness) -> None:
    for _ in range(3):
        harness.both({"ticks": quotes(10)})
    assert harness.log.frames == 3
    assert harness.log.values == harness.reference_log.values
    sequences = sorted(e.envelope.sequence for e in harness.log.events("ticks") if e.key == "EURUSD")
    assert sequences == list(range(1, 3 * 3 + 1))


BAD = [
    ("no price", 1, {"last": None}),
    ("crossed", 2, {"bid": "39440.00", "ask": "39433.62"}),
    ("off the tick", 0, {"bid": "39432.995"}),
    ("unknown instrument", 3, {"instrument": "XAUUSD"}),
    ("untimed", 1, {"exchange_ts": "2021-01-08T00:00:00"}),
    ("ahead of the clock", 2, {"exchange_ts": "2027-01-01T00:00:00Z"}),
    ("before 1970", 2, {"exchange_ts": "1969-12-31T23:59:59Z"}),
    ("negative size", 3, {"bid_size": "-1"}),
    ("not a time", 0, {"exchange_ts": "yesterday"}),
    ("an inexact JSON number", 2, {"bid": "1e3"}),
    ("an unknown field", 0, {"mid": "1"}),
    ("too many places", 1, {"ask": "1.123456789"}),
    ("a price of 0", 3, {"bid": "0"}),
    ("a bad venue", 0, {"venue": "no spaces please"}),
]


@pytest.mark.parametrize(("wrong", "index", "overrides"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_tick_gets_the_same_problem_naming_its_index_and_field(
    harness: Harness, wrong: str, index: int, overrides: dict[str, Any]
) -> None:
    ticks = quotes(4)
    ticks[index] = {k: v for k, v in (ticks[index] | overrides).items() if v is not None}
    if wrong == "an inexact JSON number":
        answer, reference = (harness.http.post(p, content=as_number(ticks, index), headers=JSON) for p in PATHS)
    else:
        answer, reference = harness.both({"ticks": ticks})
    assert answer.status_code == reference.status_code == 422, answer.text
    assert problem(answer) == problem(reference)
    assert any(e["field"].startswith(f"ticks[{index}]") for e in answer.json()["errors"]), answer.text
    assert harness.log.values == []


def test_several_bad_ticks_are_all_named_in_order(harness: Harness) -> None:
    ticks = quotes(40)
    ticks[4]["bid"] = "39999.99"  # crossed
    ticks[17]["instrument"] = "NOPE"
    ticks[30]["bid"] = "39432.001"  # off the tick
    answer, reference = harness.both({"ticks": ticks})
    assert problem(answer) == problem(reference)
    assert [e["field"] for e in answer.json()["errors"]] == ["ticks[4].bid", "ticks[17].instrument", "ticks[30].bid"]


def test_a_body_outside_the_canonical_form_is_read_as_the_per_tick_route_read_it(harness: Harness) -> None:
    ticks = quotes(8)
    ticks[2]["bid"] = "39432.99"  # sent as the JSON number 39432.99
    ticks[5]["last"] = " 1.12125"  # spaces around a decimal: refused by its grammar
    ticks[6]["exchange_ts"] = "2021-01-08 00:00:01.5+00:00"  # a space for the T
    answer, reference = (harness.http.post(p, content=as_number(ticks, 2), headers=JSON) for p in PATHS)
    assert answer.status_code == reference.status_code == 422
    assert problem(answer) == problem(reference)
    ticks[5]["last"] = "1.12125"
    answer, reference = (harness.http.post(p, content=as_number(ticks, 2), headers=JSON) for p in PATHS)
    assert answer.status_code == reference.status_code == 202, answer.text
    assert harness.log.values == harness.reference_log.values


@pytest.mark.parametrize(
    "raw",
    [
        *(b"", b"{", b"null", b"[]", b"{}", b'{"ticks": []}', b'{"ticks": {}}', b'{"source": " x", "ticks": [{}]}'),
        b'{"ticks": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nested too deeply to read
        b'{"ticks": [{"instrument": "\xff"}]}',  # not UTF-8
    ],
)
def test_malformed_bodies_get_the_same_problem(harness: Harness, raw: bytes) -> None:
    answers = [
        harness.http.post(path, content=raw, headers={"content-type": "application/json"})
        for path in ("/v1/ticks", "/reference/ticks")
    ]
    assert answers[0].status_code == answers[1].status_code and 400 <= answers[0].status_code < 500
    assert problem(answers[0]) == problem(answers[1])


_TICK = '"instrument": "BTCUSDT", "exchange_ts": "2021-01-08T00:00:01Z", "bid": "39432.99", "ask": "39433.62"'


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ('{"ticks": [{' + _TICK + ', "bid": "1.5"}]}', 422),  # a key given twice in a tick
        ('{"source": "a", "ticks": [{' + _TICK + '}], "source": "b"}', 422),  # twice at the top
        ('{"ticks": [{' + _TICK + ', "bid": "39432.99"}]}', 422),  # twice with the same value
        ('{"ticks": [{' + _TICK + ', "venue": null, "venue": null}]}', 422),  # twice, null both times
        ('{"ticks": [{' + _TICK + '}], "ticks": [{' + _TICK + "}]}", 422),  # the ticks twice
        ('{"ticks": [{' + _TICK + ', "venue": "a\\"b"}]}', 422),  # a quote inside a value
        ('{"ticks": [{' + _TICK.replace("instrument", "instr\\u0075ment") + "}]}", 202),  # an escaped key
        ('{"ticks": [{' + _TICK + ', "venue": null}]}', 202),  # a null given
        (
            '{"ticks" :[{' + _TICK.replace('": ', '"  :') + '}, {"instrument": "EURUSD", "exchange_ts": '
            '"2021-01-08T00:00:02+01:00", "last": "1.12125"}]}',
            202,
        ),  # spacing; a field one tick lacks
    ],
)
def test_repeated_and_escaped_keys_nulls_and_spacing_answer_as_the_per_tick_route(
    harness: Harness, raw: str, status: int
) -> None:
    """A key given twice (refused by the strict reader; a faster reader that keeps the last value must not take
    it), an escaped key, an explicit null, spacing and a field one tick lacks: the same bytes or the same problem."""
    answer, reference = (harness.http.post(path, content=raw.encode(), headers=JSON) for path in PATHS)
    assert answer.status_code == reference.status_code == status, answer.text
    if status == 202:
        assert harness.log.values == harness.reference_log.values
    else:
        assert problem(answer) == problem(reference)


def test_more_than_10000_ticks_are_refused_naming_ticks(harness: Harness) -> None:
    answer, reference = harness.both({"ticks": quotes(10_001)})
    assert answer.status_code == 422 and problem(answer) == problem(reference)
    assert answer.json()["errors"][0]["field"] == "ticks"


def columnar(ticks: list[dict[str, Any]], kind: str, **casts: pl.DataType) -> bytes:
    frame = pl.DataFrame(ticks, schema={k: pl.String for k in {k for t in ticks for k in t}})
    return encoded(frame.with_columns(pl.col(name).cast(dtype) for name, dtype in casts.items()), kind)


def encoded(frame: pl.DataFrame, kind: str) -> bytes:
    """``frame`` as an Arrow IPC stream or a Parquet file."""
    out = io.BytesIO()
    frame.write_ipc_stream(out) if kind == ARROW else frame.write_parquet(out)
    return out.getvalue()


@pytest.mark.parametrize("kind", [ARROW, PARQUET])
def test_arrow_and_parquet_bodies_land_as_the_same_bytes_as_json(harness: Harness, kind: str) -> None:
    ticks = quotes(1_000)
    utc = [t | {"exchange_ts": datetime.fromisoformat(t["exchange_ts"]).astimezone(UTC).isoformat()} for t in ticks]
    typed = pl.DataFrame(utc, schema={k: pl.String for k in {k for t in ticks for k in t}}).with_columns(
        pl.col("exchange_ts").str.to_datetime(time_unit="ms", time_zone="UTC"),
        pl.col("bid", "ask", "bid_size").cast(pl.Decimal(18, 8)),
    )
    answer = harness.http.post(
        "/v1/ticks", params={"source": "bulk"}, content=encoded(typed, kind), headers={"content-type": kind}
    )
    assert answer.status_code == 202, answer.text
    harness.http.post("/reference/ticks", json={"source": "bulk", "ticks": ticks})
    assert harness.log.frames == 1
    assert harness.log.values == harness.reference_log.values


@pytest.mark.parametrize("kind", [ARROW, PARQUET])
def test_a_bad_row_of_a_columnar_body_is_named_by_index_and_field(harness: Harness, kind: str) -> None:
    ticks = quotes(8)
    ticks[3]["bid"] = "abc"
    answer = harness.http.post("/v1/ticks", content=columnar(ticks, kind), headers={"content-type": kind})
    assert answer.status_code == 422, answer.text
    assert [(e["field"], e["rule"]) for e in problem(answer)["errors"]] == [("ticks[3].bid", "decimal_parsing")]
    crossed = quotes(8)
    crossed[6]["bid"] = "39999.99"
    answer = harness.http.post("/v1/ticks", content=columnar(crossed, kind), headers={"content-type": kind})
    assert [(e["field"], e["rule"]) for e in problem(answer)["errors"]] == [("ticks[6].bid", "tick.crossed")]
    floats = harness.http.post(
        "/v1/ticks", content=columnar(quotes(4), kind, ask=pl.Float64()), headers={"content-type": kind}
    )
    assert floats.status_code == 422
    assert {e["field"] for e in problem(floats)["errors"] if e["rule"] == "decimal_type"} >= {"ticks[0].ask"}
    assert harness.log.values == []


def typed_frame(ticks: list[dict[str, Any]], places: int, zone: str) -> pl.DataFrame:
    """The ticks as a bulk loader types them: decimals of ``places`` places, times in ``zone``."""
    frame = pl.DataFrame(ticks, schema={k: pl.String for k in {k for t in ticks for k in t}})
    return frame.with_columns(
        pl.col("exchange_ts").str.to_datetime(time_unit="us", time_zone="UTC").dt.convert_time_zone(zone),
        pl.col("bid", "ask", "bid_size", "last", "last_size").cast(pl.Decimal(18 + places, places)),
    )


@pytest.mark.parametrize("kind", [ARROW, PARQUET])
@pytest.mark.parametrize(
    ("change", "places", "zone", "status"),
    [
        ({}, 8, "UTC", 202),
        ({}, 0, "Europe/Paris", 202),  # whole numbers, times in another zone
        ({}, 3, "Asia/Tokyo", 202),  # fewer places, another zone: the same instants
        ({}, 9, "UTC", 202),  # more places than the events hold: all zeros, as text they read the same
        ({(2, "bid_size"): "0.123456789"}, 9, "UTC", 422),  # a ninth place that is not a zero
        ({(2, "bid"): "0"}, 8, "UTC", 422),  # a price of zero
        ({(0, "bid_size"): "-1"}, 8, "UTC", 422),  # a negative size
        ({(4, "bid"): "39999.99"}, 8, "UTC", 422),  # a crossed quote: a rule's violation, worded from the row
        ({(0, "ask"): "12345678901"}, 8, "UTC", 422),  # eleven digits before the point
        ({(1, "exchange_ts"): "0999-01-08T00:00:00+00:00"}, 8, "UTC", 422),  # a year before the epoch
    ],
)
def test_typed_columns_answer_as_the_same_values_as_text_do(
    harness: Harness, kind: str, change: dict[tuple[int, str], str], places: int, zone: str, status: int
) -> None:
    """Decimal and datetime columns are read as they are, not written and read as text, and answer what the same
    values as text columns answer: the same bytes on the log, or the same problem."""
    ticks = quotes(8)
    for (i, field), value in change.items():
        ticks[i][field] = value
    typed = typed_frame(ticks, places, zone)
    text = typed.with_columns(
        pl.col(pl.Decimal).cast(pl.String), pl.col("exchange_ts").dt.to_string("%Y-%m-%dT%H:%M:%S%.f%:z")
    )
    as_text = Harness()
    with as_text.http:
        answers = [
            h.http.post("/v1/ticks", content=encoded(frame, kind), headers={"content-type": kind})
            for h, frame in ((harness, typed), (as_text, text))
        ]
    assert answers[0].status_code == answers[1].status_code == status, answers[0].text
    if status == 202:
        assert harness.log.values == as_text.log.values != []
    else:
        assert problem(answers[0]) == problem(answers[1])


def test_an_unreadable_columnar_body_is_400_and_an_unknown_type_415(harness: Harness) -> None:
    garbage = harness.http.post("/v1/ticks", content=b"\xff" * 64, headers={"content-type": ARROW})
    assert garbage.status_code == 400 and problem(garbage)["errors"][0]["field"] == "body"
    csv = harness.http.post("/v1/ticks", content=b"instrument,bid\n", headers={"content-type": "text/csv"})
    assert csv.status_code == 415 and "text/csv" in problem(csv)["detail"]


def test_the_openapi_document_still_describes_the_body(harness: Harness) -> None:
    spec = harness.http.get("/openapi.json").json()
    operation = spec["paths"]["/v1/ticks"]["post"]
    content = operation["requestBody"]["content"]
    assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/IngestTicks"}
    assert {ARROW, PARQUET} <= set(content)
    assert spec["components"]["schemas"]["IngestTicks"]["examples"]
    assert "Tick" in spec["components"]["schemas"]
    assert {"415", "422"} <= set(operation["responses"])
