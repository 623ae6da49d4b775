"""Cancel or amend of an order the caller may not see answers exactly what it answers for an order that does not
exist, as a read does: order ids are deterministic, so a 403 naming the account would tell who trades what
(issue 12, F9)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration


def answered(response: httpx.Response, order_id: str) -> tuple[int, str, str, str]:
    problem = response.json()
    return (
        response.status_code,
        response.headers["content-type"],
        problem["title"],
        problem["detail"].replace(order_id, "<id>"),
    )


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_acting_on_another_accounts_order_looks_like_no_such_order(api: ApiServer, method: str) -> None:
    with api.client("alice") as alice:
        placed = alice.post("/v1/orders", json=order("ACC-A1"))
    assert placed.status_code == 202, placed.text
    theirs, nobodys = placed.json()["order_id"], str(uuid.uuid4())
    body = {"new_quantity": "0.5"} if method == "PATCH" else None
    with api.client("bob") as bob:
        foreign = bob.request(method, f"/v1/orders/{theirs}", json=body)
        missing = bob.request(method, f"/v1/orders/{nobodys}", json=body)
        read = bob.get(f"/v1/orders/{theirs}")
    assert foreign.status_code == 404 == read.status_code, foreign.text
    assert answered(foreign, theirs) == answered(missing, nobodys)
    assert "ACC-A1" not in foreign.text and "bob" not in foreign.text
