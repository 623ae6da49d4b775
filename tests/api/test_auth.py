"""Authentication (401) and authorization (403), route by route and role by role."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.api.conftest import order
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.integration

LIMITS = {
    "max_order_quantity": "10",
    "max_order_notional": "500000",
    "max_position_quantity": "25",
    "max_open_notional": "2000000",
    "daily_loss_limit": "50000",
    "max_orders_per_second": 50,
    "price_collar_bps": 500,
    "reference_max_age_ms": 60000,
}
TICKS = {"ticks": [{"instrument": "EURUSD", "bid": "1.1", "ask": "1.2", "exchange_ts": "2020-01-01T00:00:00Z"}]}


def forged(api: ApiServer, *, secret: str | None = None, algorithm: str = "HS256", **claims: object) -> str:
    now = int(time.time())
    # The user's current token generation, as a real token of theirs carries it: tokens of other generations are
    # revoked ones.
    generation = jwt.decode(api.token("alice"), options={"verify_signature": False})["gen"]
    body = {
        "sub": "alice",
        "roles": ["trader"],
        "accounts": ["ACC-A1"],
        "gen": generation,
        "iss": "tradecore",
        "aud": "tradecore-api",
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    if algorithm == "none":
        return jwt.encode(body, None, algorithm="none")
    return jwt.encode(body, secret or api.jwt_secret, algorithm=algorithm)


def place(api: ApiServer, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    import httpx

    answer = httpx.post(f"{api.url}/v1/orders", json=order("ACC-A1"), headers=headers, timeout=30)
    return answer.status_code, answer.headers


BAD_TOKENS = {
    "missing": lambda api: None,
    "expired": lambda api: forged(api, iat=int(time.time()) - 3600, exp=int(time.time()) - 60),
    "badly signed": lambda api: forged(api, secret="x" * 64),
    "alg none": lambda api: forged(api, algorithm="none"),
    "other audience": lambda api: forged(api, aud="someone-else"),
    "other issuer": lambda api: forged(api, iss="evil"),
    "no expiry": lambda api: jwt.encode(
        {"sub": "alice", "roles": ["trader"], "iss": "tradecore", "aud": "tradecore-api", "iat": int(time.time())},
        api.jwt_secret,
        algorithm="HS256",
    ),
    "unknown role": lambda api: forged(api, roles=["god"]),
    "garbage": lambda api: "not.a.token",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_tokens_are_401_with_a_bearer_challenge(api: ApiServer, kind: str) -> None:
    status, headers = place(api, BAD_TOKENS[kind](api))
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert headers["content-type"] == "application/problem+json"


def test_a_well_forged_token_with_the_right_key_is_accepted(api: ApiServer) -> None:
    """The negative cases above fail for the reason named, not for a defect in how the test builds tokens."""
    status, _ = place(api, forged(api))
    assert status == 202


def test_wrong_password_and_unknown_user_are_the_same_401(api: ApiServer) -> None:
    wrong = api.login("vera", "guess")
    nobody = api.login("mallory", "guess")  # names not used by other tests: logins are rate limited per name
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"]


def test_login_attempts_are_rate_limited_per_user_name(api: ApiServer) -> None:
    statuses = [api.login("eve", "guess").status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[-1] == 429


# (user, method, path, body) -> expected status
MATRIX = [
    ("alice", "POST", "/v1/orders", order("ACC-A1"), 202),
    ("alice", "POST", "/v1/orders", order("ACC-B1"), 403),  # another trader's account
    ("bob", "POST", "/v1/orders", order("ACC-B1"), 202),
    ("vera", "POST", "/v1/orders", order("ACC-A1"), 403),  # viewers read only
    ("rita", "POST", "/v1/orders", order("ACC-A1"), 403),  # risk does not trade: separation of duties
    ("adam", "POST", "/v1/orders", order("ACC-B1"), 202),  # admin acts on any account
    ("alice", "PUT", "/v1/accounts/ACC-A1/risk-limits", LIMITS, 403),  # not even for her own account
    ("adam", "PUT", "/v1/accounts/ACC-A1/risk-limits", LIMITS, 403),
    ("vera", "PUT", "/v1/accounts/ACC-A1/risk-limits", LIMITS, 403),
    ("rita", "PUT", "/v1/accounts/ACC-A1/risk-limits", LIMITS, 202),
    ("alice", "POST", "/v1/kill-switch", {"account_id": "ACC-A1", "engaged": False, "reason": "x"}, 403),
    ("rita", "POST", "/v1/kill-switch", {"account_id": "ACC-A1", "engaged": False, "reason": "x"}, 202),
    ("alice", "POST", "/v1/ticks", TICKS, 403),
    ("vera", "POST", "/v1/ticks", TICKS, 403),
    ("adam", "POST", "/v1/ticks", TICKS, 202),
    ("vera", "GET", "/v1/instruments", None, 200),
]


@pytest.mark.parametrize(
    ("user", "method", "path", "body", "expected"), MATRIX, ids=[f"{m[0]} {m[1]} {m[2]} -> {m[4]}" for m in MATRIX]
)
def test_role_matrix(api: ApiServer, user: str, method: str, path: str, body: dict | None, expected: int) -> None:
    with api.client(user) as http:
        answer = http.request(method, path, json=body)
    assert answer.status_code == expected, answer.text
    if expected == 403:
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_trader_cannot_touch_another_traders_order_but_an_admin_can(api: ApiServer) -> None:
    with api.client("bob") as bob:
        placed = bob.post("/v1/orders", json=order("ACC-B1")).json()
    path = f"/v1/orders/{placed['order_id']}"
    with api.client("alice") as alice:
        assert alice.patch(path, json={"new_quantity": "1"}).status_code == 403
        assert alice.delete(path).status_code == 403
    with api.client("vera") as vera:
        assert vera.delete(path).status_code == 403
    with api.client("adam") as adam:
        assert adam.delete(path).status_code == 202


def test_a_client_cannot_set_the_order_id_or_status(api: ApiServer) -> None:
    with api.client("alice") as http:
        answer = http.post("/v1/orders", json={**order("ACC-A1"), "order_id": "chosen", "status": "FILLED"})
    assert answer.status_code == 422
    assert {e["field"] for e in answer.json()["errors"]} == {"order_id", "status"}
