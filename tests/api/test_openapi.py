"""The OpenAPI document describes every route, with examples and the problem responses."""

import pytest

from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

COMMANDS = [
    ("/v1/orders", "post"),
    ("/v1/orders/{order_id}", "delete"),
    ("/v1/orders/{order_id}", "patch"),
    ("/v1/ticks", "post"),
    ("/v1/accounts/{account_id}/risk-limits", "put"),
    ("/v1/kill-switch", "post"),
]


def test_every_command_route_is_documented_with_examples(api: ApiServer) -> None:
    import httpx

    spec = httpx.get(f"{api.url}/openapi.json", timeout=30).json()
    schemas = spec["components"]["schemas"]
    for path, method in COMMANDS:
        operation = spec["paths"][path][method]
        assert operation["summary"] and operation["description"], (path, method)
        assert "202" in operation["responses"], (path, method)
    for model in ("PlaceOrder", "AmendOrder", "IngestTicks", "SetRiskLimits", "OrderAck"):
        assert schemas[model].get("examples"), model
    place = spec["paths"]["/v1/orders"]["post"]
    assert {"401", "403", "409", "422", "429", "503"} <= set(place["responses"])
    params = {p["name"] for p in place["parameters"]}
    assert "Idempotency-Key" in params
    assert spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"


PROBLEM = {"$ref": "#/components/schemas/Problem"}
UNAUTHENTICATED = {("/healthz", "get"), ("/readyz", "get"), ("/v1/auth/token", "post")}


def test_every_route_documents_its_answer_and_every_error_status_it_can_give(api: ApiServer) -> None:
    """What issue 15 item 5 is done by: a generated client can read every body the API sends."""
    import httpx

    spec = httpx.get(f"{api.url}/openapi.json", timeout=30).json()
    operations = [(path, method, op) for path, ops in spec["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 20
    for path, method, op in operations:
        answers = op["responses"]
        ok = [status for status in answers if status.startswith("2")]
        assert ok, (path, method)
        for status in ok:
            # JSON, or the live feed's text/event-stream: either way a schema says what a message holds.
            [(_media, body)] = answers[status]["content"].items()
            assert body["schema"], (path, method, status)
        expected = set()
        if (path, method) not in UNAUTHENTICATED:
            expected.add("401")
        if op.get("parameters") or "requestBody" in op:
            expected.add("422")
        if "requestBody" in op and (path, method) != ("/v1/auth/token", "post"):
            expected |= {"400", "413"}
        if "{order_id}" in path:
            expected.add("404")
        assert expected <= set(answers), (path, method, expected - set(answers))
        for status, answer in answers.items():
            if int(status) >= 400 and (path, method) != ("/readyz", "get"):
                assert answer["content"] == {"application/problem+json": {"schema": PROBLEM}}, (path, method, status)
    reads = {
        path: spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        for path in (
            "/v1/orders",
            "/v1/orders/{order_id}",
            "/v1/orders/{order_id}/events",
            "/v1/fills",
            "/v1/positions",
            "/v1/pnl",
            "/v1/candles",
            "/v1/signals",
            "/v1/risk/rejections",
            "/v1/accounts/{account_id}/state",
        )
    }
    assert all(schema.get("$ref") for schema in reads.values()), reads
    page = spec["components"]["schemas"]["OrderPage"]
    assert set(page["required"]) == {"items", "next", "checkpoint"}
    assert "status" in spec["components"]["schemas"]["Order"]["required"]


UNPARSABLE = {
    "invalid UTF-8": b'{"account_id": "ACC-A1", "instrument": "\xff\xfe"}',
    "nested 1,000 levels": b"[" * 1000 + b"]" * 1000,
    "a 5,001-digit integer": b'{"quantity": ' + b"7" * 5001 + b"}",
}
BODY_ROUTES = [
    ("alice", "POST", "/v1/orders"),
    ("adam", "POST", "/v1/ticks"),
    ("rita", "PUT", "/v1/accounts/ACC-A1/risk-limits"),
    ("rita", "POST", "/v1/kill-switch"),
]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{m} {p}" for _, m, p in BODY_ROUTES])
@pytest.mark.parametrize("body", list(UNPARSABLE), ids=list(UNPARSABLE))
def test_a_body_that_cannot_be_parsed_is_400_naming_the_body(
    api: ApiServer, route: tuple[str, str, str], body: str
) -> None:
    user, method, path = route
    with api.client(user) as http:
        answer = http.request(method, path, content=UNPARSABLE[body], headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert [e["field"] for e in problem["errors"]] == ["body"]
    assert problem["errors"][0]["message"] == problem["detail"]
