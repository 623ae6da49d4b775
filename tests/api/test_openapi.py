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
