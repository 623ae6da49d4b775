"""One grammar for decimals on the wire, JSON read strictly, and a size limit per route (issue 12, F10): what a
lenient reader once took — `"1_0"` as 10, Arabic-Indic or full-width digits, `"1e3"`, spaces, a leading `+`, a key
given twice, a body of any size — is refused with a problem naming the field and the rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

NOT_DECIMALS = ["1_0", "\u0660.\u0660\u0661", "\uff11", "1e3", " 1", "1 ", "1\n", "+1", "1.", ".5", "0x1", "Infinity"]


@pytest.mark.parametrize("text", NOT_DECIMALS, ids=[repr(t) for t in NOT_DECIMALS])
def test_a_decimal_outside_the_grammar_is_refused_naming_the_field(api: ApiServer, text: str) -> None:
    with api.client("alice") as http:
        answer = http.post("/v1/orders", json=order("ACC-A1", quantity=text))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    [error] = answer.json()["errors"]
    assert (error["field"], error["rule"]) == ("quantity", "decimal_parsing")
    assert "no exponent" in error["message"]


@pytest.mark.parametrize(("number", "status"), [("0.25", 202), ("1", 202), ("1e3", 422), ("2.5E-1", 422)])
def test_a_json_number_is_taken_only_when_exact_in_the_grammar(api: ApiServer, number: str, status: int) -> None:
    body = json.dumps(order("ACC-A1", quantity="QTY")).replace('"QTY"', number)
    with api.client("alice") as http:
        answer = http.post("/v1/orders", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    if status == 422:
        assert [e["field"] for e in answer.json()["errors"]] == ["quantity"]


def test_a_key_given_twice_is_refused(api: ApiServer) -> None:
    body = json.dumps(order("ACC-A1"))[:-1] + ', "account_id": "ACC-A2"}'
    with api.client("alice") as http:
        answer = http.post("/v1/orders", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert [(e["field"], e["rule"]) for e in answer.json()["errors"]] == [("account_id", "json.duplicate_key")]


def test_the_openapi_document_states_the_grammar(api: ApiServer) -> None:
    with api.client() as http:
        document = http.get("/openapi.json").json()
    grammar = r"^-?[0-9]+(\.[0-9]+)?$"
    quantity = document["components"]["schemas"]["PlaceOrder"]["properties"]["quantity"]
    limit = document["components"]["schemas"]["SetRiskLimits"]["properties"]["daily_loss_limit"]
    assert quantity["pattern"] == grammar == limit["pattern"]
    assert grammar in document["info"]["description"] and "no exponent" in document["info"]["description"]


def refused_as_too_large(answer_status: int, problem: dict[str, object]) -> bool:
    return answer_status == 413 and problem["errors"] == [
        {"field": "body", "rule": "body.max_size", "message": problem["detail"]}
    ]


def test_a_command_body_over_its_limit_is_413_before_it_is_read(api: ApiServer) -> None:
    huge = json.dumps({**order("ACC-A1"), "padding": "x" * 200_000})
    with api.client("alice") as http:
        declared = http.post("/v1/orders", content=huge, headers={"content-type": "application/json"})

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10_000):
                yield b" " * 1024

        streamed = http.post("/v1/orders", content=chunks(), headers={"content-type": "application/json"})
    for answer in (declared, streamed):
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        assert refused_as_too_large(answer.status_code, answer.json()), answer.text


def test_a_tick_batch_has_a_larger_limit_than_a_command(api: ApiServer) -> None:
    at = datetime.now(UTC).isoformat()
    ticks = [{"instrument": "EURUSD", "bid": "1.12120", "ask": "1.12172", "exchange_ts": at}] * 2000
    with api.client("adam") as http:
        answer = http.post("/v1/ticks", json={"source": "big", "ticks": ticks})
    assert len(json.dumps(ticks)) > 64 * 1024
    assert answer.status_code == 202, answer.text
