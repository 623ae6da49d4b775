"""`POST /v1/orders` answers a plainly valid request at the framework's floor (msgspec for the body,
api/place_body.py; the route's dependencies called directly, api/place_route.py) and leaves every other request to
FastAPI and pydantic: the problem+json a bad body, header, parameter or token gets is pinned here word for word, as
the API answered before the floor existed (the expected bodies were recorded from that code)."""

from __future__ import annotations

import json

import pytest

from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

# The words of the decimal grammar, in the messages of every decimal refused (commands.models.DECIMAL_RULE).
RULE = (
    "a decimal is an optional '-', ASCII digits and at most one '.' between digits: no exponent, '_', '+', "
    "whitespace or other digits"
)

GOOD = {
    "account_id": "ACC-A1",
    "client_order_id": "pin-1",
    "instrument": "BTCUSDT",
    "side": "BUY",
    "order_type": "LIMIT",
    "time_in_force": "GTC",
    "quantity": "0.25",
    "limit_price": "39420.50",
}


def body(**changes: object) -> bytes:
    return json.dumps({k: v for k, v in {**GOOD, **changes}.items() if v is not ...}).encode()


BAD: list[tuple[str, bytes, str]] = [
    ("wrong type", body(account_id=1), "application/json"),
    ("missing field", body(quantity=...), "application/json"),
    ("extra field", body(status="FILLED"), "application/json"),
    ("decimal off the grammar", body(quantity="1e3"), "application/json"),
    ("inexact JSON number", body(quantity="Q").replace(b'"Q"', b"1e3"), "application/json"),
    ("a float for a decimal", body(quantity="Q").replace(b'"Q"', b"true"), "application/json"),
    ("too many places", body(limit_price="1.123456789"), "application/json"),
    ("too many digits", body(limit_price="1234567890123.123456"), "application/json"),
    ("not positive", body(quantity="-1"), "application/json"),
    ("zero", body(quantity="0"), "application/json"),
    ("unknown side", body(side="SIDEWAYS"), "application/json"),
    ("unknown order type", body(order_type="STOP"), "application/json"),
    ("unknown time in force", body(time_in_force="GTD"), "application/json"),
    ("id off its pattern", body(client_order_id="a b"), "application/json"),
    ("id too long", body(client_order_id="x" * 65), "application/json"),
    ("empty id", body(client_order_id=""), "application/json"),
    ("a character after a newline in an id", body(instrument="BTCUSDT\nX"), "application/json"),
    ("a key given twice", body()[:-1] + b', "account_id": "ACC-A2"}', "application/json"),
    ("not an object", b"[]", "application/json"),
    ("not JSON", b"{", "application/json"),
    ("not declared JSON", body(), "text/plain"),
    ("a LIMIT order without a price", body(limit_price=...), "application/json"),
]

EXPECTED: dict[str, dict[str, object]] = {
    "wrong type": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "account_id: Input should be a valid string",
        "instance": "/v1/orders",
        "errors": [{"field": "account_id", "rule": "string_type", "message": "Input should be a valid string"}],
    },
    "missing field": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "quantity: Field required",
        "instance": "/v1/orders",
        "errors": [{"field": "quantity", "rule": "missing", "message": "Field required"}],
    },
    "extra field": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "status: Extra inputs are not permitted",
        "instance": "/v1/orders",
        "errors": [{"field": "status", "rule": "extra_forbidden", "message": "Extra inputs are not permitted"}],
    },
    "decimal off the grammar": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": f"quantity: '1e3' is not a decimal: {RULE}",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "quantity",
                "rule": "decimal_parsing",
                "message": f"'1e3' is not a decimal: {RULE}",
            }
        ],
    },
    "inexact JSON number": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": f"quantity: the JSON number 1e3 is not exact: {RULE}",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "quantity",
                "rule": "decimal_parsing",
                "message": f"the JSON number 1e3 is not exact: {RULE}",
            }
        ],
    },
    "a float for a decimal": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": f"quantity: give the decimal as a string: {RULE}",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "quantity",
                "rule": "decimal_type",
                "message": f"give the decimal as a string: {RULE}",
            }
        ],
    },
    "too many places": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "limit_price: Decimal input should have no more than 8 decimal places",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "limit_price",
                "rule": "decimal_max_places",
                "message": "Decimal input should have no more than 8 decimal places",
            }
        ],
    },
    "too many digits": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "limit_price: Decimal input should have no more than 18 digits in total",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "limit_price",
                "rule": "decimal_max_digits",
                "message": "Decimal input should have no more than 18 digits in total",
            }
        ],
    },
    "not positive": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "quantity: Input should be greater than 0",
        "instance": "/v1/orders",
        "errors": [{"field": "quantity", "rule": "greater_than", "message": "Input should be greater than 0"}],
    },
    "zero": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "quantity: Input should be greater than 0",
        "instance": "/v1/orders",
        "errors": [{"field": "quantity", "rule": "greater_than", "message": "Input should be greater than 0"}],
    },
    "unknown side": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "side: Input should be 'BUY' or 'SELL'",
        "instance": "/v1/orders",
        "errors": [{"field": "side", "rule": "enum", "message": "Input should be 'BUY' or 'SELL'"}],
    },
    "unknown order type": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "order_type: Input should be 'MARKET' or 'LIMIT'",
        "instance": "/v1/orders",
        "errors": [{"field": "order_type", "rule": "enum", "message": "Input should be 'MARKET' or 'LIMIT'"}],
    },
    "unknown time in force": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "time_in_force: Input should be 'GTC', 'IOC' or 'FOK'",
        "instance": "/v1/orders",
        "errors": [{"field": "time_in_force", "rule": "enum", "message": "Input should be 'GTC', 'IOC' or 'FOK'"}],
    },
    "id off its pattern": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "client_order_id: String should match pattern '^[A-Za-z0-9._:\\-]+$'",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "client_order_id",
                "rule": "string_pattern_mismatch",
                "message": "String should match pattern '^[A-Za-z0-9._:\\-]+$'",
            }
        ],
    },
    "id too long": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "client_order_id: String should have at most 64 characters",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "client_order_id",
                "rule": "string_too_long",
                "message": "String should have at most 64 characters",
            }
        ],
    },
    "empty id": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "client_order_id: String should have at least 1 character",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "client_order_id",
                "rule": "string_too_short",
                "message": "String should have at least 1 character",
            }
        ],
    },
    "a character after a newline in an id": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "instrument: String should match pattern '^[A-Za-z0-9._:\\-]+$'",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "instrument",
                "rule": "string_pattern_mismatch",
                "message": "String should match pattern '^[A-Za-z0-9._:\\-]+$'",
            }
        ],
    },
    "a key given twice": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "'account_id' is given more than once in one object",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "account_id",
                "rule": "json.duplicate_key",
                "message": "'account_id' is given more than once in one object",
            }
        ],
    },
    "not an object": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "body: Input should be a valid dictionary or object to extract fields from",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "body",
                "rule": "model_attributes_type",
                "message": "Input should be a valid dictionary or object to extract fields from",
            }
        ],
    },
    "not JSON": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "[1]: JSON decode error",
        "instance": "/v1/orders",
        "errors": [{"field": "[1]", "rule": "json_invalid", "message": "JSON decode error"}],
    },
    "not declared JSON": {
        "type": "https://tradecore.dev/problems/request-is-not-valid",
        "title": "Request is not valid",
        "status": 422,
        "detail": "body: Input should be a valid dictionary or object to extract fields from",
        "instance": "/v1/orders",
        "errors": [
            {
                "field": "body",
                "rule": "model_attributes_type",
                "message": "Input should be a valid dictionary or object to extract fields from",
            }
        ],
    },
    "a LIMIT order without a price": {
        "type": "https://tradecore.dev/problems/command-rejected",
        "title": "Command rejected",
        "status": 422,
        "detail": "limit_price: a LIMIT order needs a limit_price",
        "instance": "/v1/orders",
        "errors": [
            {"field": "limit_price", "rule": "limit_price.required", "message": "a LIMIT order needs a limit_price"}
        ],
    },
}


@pytest.mark.parametrize(("case", "raw", "content_type"), BAD, ids=[case for case, _, _ in BAD])
def test_a_bad_order_gets_the_same_problem_as_before(api: ApiServer, case: str, raw: bytes, content_type: str) -> None:
    with api.client("alice") as http:
        answer = http.post("/v1/orders", content=raw, headers={"content-type": content_type})
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.status_code, answer.json()) == (EXPECTED[case]["status"], EXPECTED[case])


# With a valid body, what FastAPI judges beside it: the floor (api/place_route.py) hands such a request to FastAPI.
BAD_AROUND: list[tuple[str, dict[str, str], str]] = [
    ("a correlation id over 128 characters", {"X-Correlation-ID": "c" * 129}, ""),
    ("an empty Idempotency-Key", {"Idempotency-Key": ""}, ""),
    ("an Idempotency-Key over 128 characters", {"Idempotency-Key": "k" * 129}, ""),
    ("an unknown wait", {}, "?wait=FILLED"),
    ("an empty wait", {}, "?wait="),
    ("no token", {"Authorization": ""}, ""),
    ("a forged token", {"Authorization": "Bearer not-a-token"}, ""),
    ("a scheme other than Bearer", {"Authorization": "Basic YWxpY2U6eA=="}, ""),
]

EXPECTED_AROUND: dict[str, tuple[int, dict[str, object]]] = {
    "a correlation id over 128 characters": (
        422,
        {
            "type": "https://tradecore.dev/problems/request-is-not-valid",
            "title": "Request is not valid",
            "status": 422,
            "detail": "x-correlation-id: String should have at most 128 characters",
            "instance": "/v1/orders",
            "errors": [
                {
                    "field": "x-correlation-id",
                    "rule": "string_too_long",
                    "message": "String should have at most 128 characters",
                }
            ],
        },
    ),
    "an empty Idempotency-Key": (
        422,
        {
            "type": "https://tradecore.dev/problems/request-is-not-valid",
            "title": "Request is not valid",
            "status": 422,
            "detail": "Idempotency-Key: String should have at least 1 character",
            "instance": "/v1/orders",
            "errors": [
                {
                    "field": "Idempotency-Key",
                    "rule": "string_too_short",
                    "message": "String should have at least 1 character",
                }
            ],
        },
    ),
    "an Idempotency-Key over 128 characters": (
        422,
        {
            "type": "https://tradecore.dev/problems/request-is-not-valid",
            "title": "Request is not valid",
            "status": 422,
            "detail": "Idempotency-Key: String should have at most 128 characters",
            "instance": "/v1/orders",
            "errors": [
                {
                    "field": "Idempotency-Key",
                    "rule": "string_too_long",
                    "message": "String should have at most 128 characters",
                }
            ],
        },
    ),
    "an unknown wait": (
        422,
        {
            "type": "https://tradecore.dev/problems/request-is-not-valid",
            "title": "Request is not valid",
            "status": 422,
            "detail": "wait: Input should be 'ACCEPTED'",
            "instance": "/v1/orders",
            "errors": [{"field": "wait", "rule": "enum", "message": "Input should be 'ACCEPTED'"}],
        },
    ),
    "an empty wait": (
        422,
        {
            "type": "https://tradecore.dev/problems/request-is-not-valid",
            "title": "Request is not valid",
            "status": 422,
            "detail": "wait: Input should be 'ACCEPTED'",
            "instance": "/v1/orders",
            "errors": [{"field": "wait", "rule": "enum", "message": "Input should be 'ACCEPTED'"}],
        },
    ),
    "no token": (
        401,
        {
            "type": "https://tradecore.dev/problems/not-authenticated",
            "title": "Not authenticated",
            "status": 401,
            "detail": "send an access token: Authorization: Bearer <token> (POST /v1/auth/token)",
            "instance": "/v1/orders",
        },
    ),
    "a forged token": (
        401,
        {
            "type": "https://tradecore.dev/problems/not-authenticated",
            "title": "Not authenticated",
            "status": 401,
            "detail": "the access token is not valid: Not enough segments",
            "instance": "/v1/orders",
        },
    ),
    "a scheme other than Bearer": (
        401,
        {
            "type": "https://tradecore.dev/problems/not-authenticated",
            "title": "Not authenticated",
            "status": 401,
            "detail": "send an access token: Authorization: Bearer <token> (POST /v1/auth/token)",
            "instance": "/v1/orders",
        },
    ),
}


@pytest.mark.parametrize(("case", "headers", "query"), BAD_AROUND, ids=[case for case, _, _ in BAD_AROUND])
def test_a_bad_header_or_parameter_gets_the_same_problem_as_before(
    api: ApiServer, case: str, headers: dict[str, str], query: str
) -> None:
    with api.client("alice") as http:
        answer = http.post(
            "/v1/orders" + query, content=body(), headers={"content-type": "application/json", **headers}
        )
    assert answer.headers["content-type"] == "application/problem+json"
    assert (answer.status_code, answer.json()) == EXPECTED_AROUND[case]
