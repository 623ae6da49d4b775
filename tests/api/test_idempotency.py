"""A repeated command returns the first outcome and appends nothing, even when the repeats race."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import httpx
import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer
from tests.support.independent import IndependentReader

pytestmark = pytest.mark.integration


def placed_events(reader: IndependentReader, api: ApiServer, partition: int, order_id: str) -> list[dict]:
    return [
        v
        for _, _, v in reader.partition(api.topic_prefix + "orders", partition)
        if v.get("order_id") == order_id and v["envelope"]["event_type"] == "OrderPlaced"
    ]


def test_a_repeated_client_order_id_returns_the_first_outcome(
    api: ApiServer, reader: IndependentReader, account: str
) -> None:
    body = order(account)
    with api.client("alice") as http:
        first = http.post("/v1/orders", json=body)
        second = http.post("/v1/orders", json=body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    ack = first.json()
    assert len(placed_events(reader, api, ack["event"]["partition"], ack["order_id"])) == 1


def test_concurrent_repeats_append_exactly_one_event(api: ApiServer, reader: IndependentReader, account: str) -> None:
    body = order(account)
    token = api.token("alice")

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            return await asyncio.gather(*(http.post("/v1/orders", json=body) for _ in range(16)))

    answers = asyncio.run(race())
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1  # every caller sees the same order, partition and offset
    ack = answers[0].json()
    assert len(placed_events(reader, api, ack["event"]["partition"], ack["order_id"])) == 1


def test_racing_placements_of_one_client_order_id_with_different_bodies_place_one_of_them(
    api: ApiServer, reader: IndependentReader, account: str
) -> None:
    """Orders arriving together go through the write side as one batch; a client_order_id sent twice in a batch,
    once with another body, still places one order: the other requests get its outcome or a 409."""
    bodies = [order(account), order(account)]
    bodies[1] = {**bodies[1], "client_order_id": bodies[0]["client_order_id"], "quantity": "0.5"}
    token = api.token("alice")

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            return await asyncio.gather(*(http.post("/v1/orders", json=bodies[i % 2]) for i in range(24)))

    answers = asyncio.run(race())
    placed = [a for a in answers if a.status_code == 202]
    assert placed and len({a.text for a in placed}) == 1
    ack = placed[0].json()
    [event] = placed_events(reader, api, ack["event"]["partition"], ack["order_id"])
    winner = 0 if Decimal(event["quantity"]) == Decimal(str(bodies[0]["quantity"])) else 1
    for i, answer in enumerate(answers):
        assert answer.status_code == (202 if i % 2 == winner else 409), (i, answer.text)


def test_reusing_a_client_order_id_for_another_order_is_a_conflict(api: ApiServer, account: str) -> None:
    body = order(account)
    with api.client("alice") as http:
        assert http.post("/v1/orders", json=body).status_code == 202
        other = http.post("/v1/orders", json={**body, "quantity": "0.5"})
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert body["client_order_id"] in other.json()["detail"]


def test_an_idempotency_key_makes_a_cancel_safe_to_retry(
    api: ApiServer, reader: IndependentReader, account: str
) -> None:
    key = str(uuid.uuid4())
    with api.client("alice") as http:
        placed = http.post("/v1/orders", json=order(account)).json()
        first = http.delete(f"/v1/orders/{placed['order_id']}", headers={"Idempotency-Key": key})
        again = http.delete(f"/v1/orders/{placed['order_id']}", headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    cancels = [
        v
        for _, _, v in reader.partition(api.topic_prefix + "orders", placed["event"]["partition"])
        if v.get("order_id") == placed["order_id"] and v["envelope"]["event_type"] == "CancelRequested"
    ]
    assert len(cancels) == 1


def test_an_idempotency_key_on_orders_returns_the_first_outcome(api: ApiServer, account: str) -> None:
    key = str(uuid.uuid4())
    body = order(account)
    with api.client("alice") as http:
        first = http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        again = http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
        misuse = http.post("/v1/orders", json=order(account), headers={"Idempotency-Key": key})
    assert first.json() == again.json()
    assert misuse.status_code == 422
    assert "Idempotency-Key" in misuse.json()["detail"]
