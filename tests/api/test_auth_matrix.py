"""The auth matrix as a table (issue 12 probes): every route refuses every kind of bad token; every route answers
every role as the role allows; a trader reaches no other account's data, by id or by filter; and a body cannot
set what the server owns. The routes of /openapi.json must all be in the table, so a new route is probed too."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.api.conftest import order
from tests.api.test_auth import LIMITS, TICKS
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

Path = Callable[[ApiServer], str]
KILL = {"account_id": "ACC-A1", "engaged": False, "reason": "matrix"}


def fresh_order(api: ApiServer, account: str = "ACC-A1", user: str = "alice") -> str:
    with api.client(user) as http:
        answer = http.post("/v1/orders", json=order(account))
    assert answer.status_code == 202, answer.text
    order_id: str = answer.json()["order_id"]
    return order_id


def projected_order(api: ApiServer, user: str, account: str) -> str:
    """An order placed and read back through the orders read model (the projector has it)."""
    with api.client(user) as http:
        ack = http.post("/v1/orders", json=order(account)).json()
    event = ack["event"]
    with api.client("adam") as adam:
        read = adam.get(
            f"/v1/orders/{ack['order_id']}", params={"min_offset": f"{event['topic']}:{event['partition']}:0"}
        )
        deadline = time.monotonic() + 60
        while read.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
            read = adam.get(f"/v1/orders/{ack['order_id']}")
    assert read.status_code == 200, read.text
    return str(ack["order_id"])


@pytest.fixture(scope="module")
def orders(projected: ApiServer) -> dict[str, str]:
    return {"alice": projected_order(projected, "alice", "ACC-A1"), "bob": projected_order(projected, "bob", "ACC-B1")}


def fixed(path: str) -> Path:
    return lambda api: path


def own_order(suffix: str = "") -> Path:
    return lambda api: f"/v1/orders/{fresh_order(api)}{suffix}"


def read_order(suffix: str = "") -> Path:
    """An order of alice's the orders read model already holds."""
    return lambda api: f"/v1/orders/{projected_order(api, 'alice', 'ACC-A1')}{suffix}"


# (method, path template, path for the test, body)
ROUTES: list[tuple[str, str, Path, dict[str, Any] | None]] = [
    ("POST", "/v1/orders", fixed("/v1/orders"), order("ACC-A1")),
    ("GET", "/v1/orders", fixed("/v1/orders"), None),
    ("GET", "/v1/orders/{order_id}", read_order(), None),
    ("GET", "/v1/orders/{order_id}/events", read_order("/events"), None),
    ("DELETE", "/v1/orders/{order_id}", own_order(), None),
    ("PATCH", "/v1/orders/{order_id}", own_order(), {"new_quantity": "0.5"}),
    ("GET", "/v1/fills", fixed("/v1/fills"), None),
    ("GET", "/v1/positions", fixed("/v1/positions"), None),
    ("GET", "/v1/pnl", fixed("/v1/pnl"), None),
    ("GET", "/v1/candles", fixed("/v1/candles?instrument=BTCUSDT&timeframe=1m"), None),
    ("GET", "/v1/signals", fixed("/v1/signals"), None),
    ("GET", "/v1/risk/rejections", fixed("/v1/risk/rejections"), None),
    ("GET", "/v1/risk/limits", fixed("/v1/risk/limits"), None),
    ("GET", "/v1/stream", fixed("/v1/stream"), None),
    ("PUT", "/v1/accounts/{account_id}/risk-limits", fixed("/v1/accounts/ACC-A1/risk-limits"), LIMITS),
    ("POST", "/v1/kill-switch", fixed("/v1/kill-switch"), KILL),
    ("GET", "/v1/accounts/{account_id}/state", fixed("/v1/accounts/ACC-A1/state"), None),
    ("POST", "/v1/ticks", fixed("/v1/ticks"), TICKS),
    ("GET", "/v1/instruments", fixed("/v1/instruments"), None),
]
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", "/v1/auth/token")}
ROLES = {"trader": "alice", "viewer": "vera", "risk": "rita", "admin": "adam"}
READ = {"trader": 200, "viewer": 200, "risk": 200, "admin": 200}
TRADE = {"trader": 202, "viewer": 403, "risk": 403, "admin": 202}
RISK = {"trader": 403, "viewer": 403, "risk": 202, "admin": 403}
FEED = {"trader": 403, "viewer": 403, "risk": 403, "admin": 202}
EXPECTED = {
    "/v1/orders POST": TRADE,
    "/v1/orders/{order_id} DELETE": TRADE,
    "/v1/orders/{order_id} PATCH": TRADE,
    "/v1/accounts/{account_id}/risk-limits PUT": RISK,
    "/v1/kill-switch POST": RISK,
    "/v1/ticks POST": FEED,
}


def test_the_table_covers_every_route_of_the_document(projected: ApiServer) -> None:
    spec = httpx.get(f"{projected.url}/openapi.json", timeout=30).json()
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert documented - OPEN == {(method, template) for method, template, _, _ in ROUTES}


def _rsa() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _claims(api: ApiServer, **changes: object) -> dict[str, object]:
    real = jwt.decode(api.token("adam"), options={"verify_signature": False})
    return {**real, **changes}


def _tampered(api: ApiServer) -> str:
    """alice's real token with its claims rewritten to an admin's, the signature kept."""
    header, _, signature = api.token("alice").split(".")
    claims = jwt.decode(api.token("alice"), options={"verify_signature": False})
    claims["roles"] = ["admin"]
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hs_with_rsa_key(api: ApiServer) -> str:
    """The algorithm-confusion attack: HMAC-signed with an RSA public key as the secret (by hand: PyJWT refuses)."""
    _, public = _rsa()
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
    signing_input = f"{_b64(header)}.{_b64(json.dumps(_claims(api)).encode())}"
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


BAD_TOKENS: dict[str, Callable[[ApiServer], str | None]] = {
    "none": lambda api: None,
    "expired": lambda api: jwt.encode(
        _claims(api, iat=int(time.time()) - 3600, exp=int(time.time()) - 60), api.jwt_secret, algorithm="HS256"
    ),
    "foreign key": lambda api: jwt.encode(_claims(api), "another service's key, 32 bytes or more", algorithm="HS256"),
    "alg none": lambda api: jwt.encode(_claims(api), None, algorithm="none"),
    "HS with RSA key": _hs_with_rsa_key,
    "RS256": lambda api: jwt.encode(_claims(api), _rsa()[0], algorithm="RS256"),
    "tampered": _tampered,
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_every_route_refuses_every_bad_token(projected: ApiServer, kind: str) -> None:
    token = BAD_TOKENS[kind](projected)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=projected.url, headers=headers, timeout=30) as http:
        for method, template, path, body in ROUTES:
            answer = http.request(method, path(projected), json=body)
            assert answer.status_code == 401, (kind, method, template, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(
    ("method", "template", "path", "body"), ROUTES, ids=[f"{method} {template}" for method, template, _, _ in ROUTES]
)
def test_every_route_answers_every_role_as_the_role_allows(
    projected: ApiServer, role: str, method: str, template: str, path: Path, body: dict[str, Any] | None
) -> None:
    expected = EXPECTED.get(f"{template} {method}", READ)[role]
    # Streamed, so the live feed (an endless body) is judged by its status line like every other route.
    with projected.client(ROLES[role]) as http, http.stream(method, path(projected), json=body) as answer:
        said = answer.read().decode() if answer.status_code != 200 else ""
    assert answer.status_code == expected, said


BY_FILTER = ["/v1/orders", "/v1/fills", "/v1/positions", "/v1/pnl", "/v1/risk/rejections"]


def test_a_trader_reaches_no_other_account_by_id_or_by_filter(projected: ApiServer, orders: dict[str, str]) -> None:
    bobs = f"/v1/orders/{orders['bob']}"
    with projected.client("alice") as alice:
        assert alice.get(bobs).status_code == 404
        assert alice.get(f"{bobs}/events").status_code == 404
        for path in BY_FILTER:
            assert alice.get(path, params={"account_id": "ACC-B1"}).status_code == 403, path
        assert alice.get("/v1/accounts/ACC-B1/state").status_code == 403
        assert alice.post("/v1/orders", json=order("ACC-B1")).status_code == 403
        # Another's order is not hers to act on: refused, whichever way (F9 makes it the read's 404).
        assert alice.delete(bobs).status_code in (403, 404)
        assert alice.patch(bobs, json={"new_quantity": "0.5"}).status_code in (403, 404)
        listed = alice.get("/v1/orders", params={"limit": 1000}).json()["items"]
    assert orders["alice"] in {o["order_id"] for o in listed}
    assert {o["account_id"] for o in listed} <= {f"ACC-A{i}" for i in range(1, 30)}
    with projected.client("vera") as vera:
        assert vera.get(bobs).json()["account_id"] == "ACC-B1"  # the 404 above is scope, not absence
    with projected.client("bob") as bob:
        assert bob.get(f"/v1/orders/{orders['alice']}").status_code == 404


SERVER_OWNED = [
    ("alice", "POST", fixed("/v1/orders"), order("ACC-A1"), {"order_id": "chosen", "status": "FILLED"}),
    ("alice", "POST", fixed("/v1/orders"), order("ACC-A1"), {"filled_quantity": "1", "placed_at": "2020-01-01"}),
    ("alice", "PATCH", own_order(), {"new_quantity": "0.5"}, {"account_id": "ACC-B1"}),
    ("rita", "PUT", fixed("/v1/accounts/ACC-A1/risk-limits"), LIMITS, {"limits_set_by": "alice"}),
    ("rita", "POST", fixed("/v1/kill-switch"), KILL, {"set_by": "alice"}),
]


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "owned"),
    SERVER_OWNED,
    ids=[f"{m} {sorted(o)}" for _, m, _, _, o in SERVER_OWNED],
)
def test_a_body_cannot_set_what_the_server_owns(
    projected: ApiServer, user: str, method: str, path: Path, body: dict[str, Any], owned: dict[str, Any]
) -> None:
    with projected.client(user) as http:
        answer = http.request(method, path(projected), json={**body, **owned})
    assert answer.status_code == 422, answer.text
    assert {e["field"] for e in answer.json()["errors"]} == set(owned)


def test_a_tick_cannot_set_when_it_was_recorded(projected: ApiServer) -> None:
    tick = {**TICKS["ticks"][0], "recorded_at": "2020-01-01T00:00:00Z"}  # type: ignore[index]
    with projected.client("adam") as adam:
        answer = adam.post("/v1/ticks", json={"ticks": [tick]})
    assert answer.status_code == 422, answer.text
    assert [e["field"] for e in answer.json()["errors"]] == ["ticks[0].recorded_at"]
