"""The command API as users run it: `tradecore api` in its own process, against the real stack."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.auth import Role, add_user
from deploy import launch
from deploy.local.stack import Endpoints
from tests.support.stack import drop_namespace, namespace_exists
from tests.support.workers import warn_if_slow

PASSWORD = "correct horse battery staple"
USERS: dict[str, tuple[list[Role], list[str]]] = {
    "alice": ([Role.TRADER], [f"ACC-A{i}" for i in range(1, 30)]),
    "bob": ([Role.TRADER], ["ACC-B1"]),
    "vera": ([Role.VIEWER], []),
    "rita": ([Role.RISK], []),
    "adam": ([Role.ADMIN], []),
}
HALTED = """
[[instrument]]
symbol = "HALTED"
venue = "TEST"
base = "HLT"
quote = "USD"
tick_size = "0.01"
lot_size = "1"
min_quantity = "1"
max_quantity = "100"
tradable = false
"""


@dataclass
class ApiServer:
    url: str
    topic_prefix: str
    jwt_secret: str
    endpoints: Endpoints
    service: launch.Service
    env: dict[str, str]
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict)

    @classmethod
    def start(
        cls, log: Path, env: dict[str, str], topic_prefix: str, jwt_secret: str, endpoints: Endpoints
    ) -> ApiServer:
        service = launch.start_api(log, env)
        return cls(service.url, topic_prefix, jwt_secret, endpoints, service, env)

    def stop(self) -> None:
        started = time.monotonic()
        self.service.stop(30)
        warn_if_slow(self.service.process, started, self.service.log)

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the API (SIGTERM), stay down ``down_s``, and start it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.service = launch.start_api(self.service.log, self.env, port=self.service.port)

    def login(self, user: str, password: str = PASSWORD) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/auth/token", data={"username": user, "password": password}, timeout=30)

    def token(self, user: str) -> str:
        """A bearer token for ``user``, reused while it is fresh, as a client would (logins are rate limited)."""
        cached = self._tokens.get(user)
        if cached is None or cached[0] < time.monotonic():
            answer = self.login(user)
            answer.raise_for_status()
            body = answer.json()
            cached = self._tokens[user] = (time.monotonic() + body["expires_in"] / 2, body["access_token"])
        return cached[1]

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token(user)}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextlib.contextmanager
def api_server(endpoints: Endpoints, workdir: Path, topic_prefix: str, **extra_env: str) -> Iterator[ApiServer]:
    users = workdir / "users.toml"
    for name, (roles, accounts) in USERS.items():
        add_user(users, name, PASSWORD, roles, accounts)
    instruments = workdir / "instruments.toml"
    from domain.instruments import DEFAULT_FILE

    instruments.write_text(DEFAULT_FILE.read_text() + HALTED)
    secret = secrets.token_hex(32)
    env = {
        **os.environ,
        **endpoints.as_env(),
        "TRADECORE_JWT_SECRET": secret,
        "TRADECORE_USERS_FILE": str(users),
        "TRADECORE_INSTRUMENTS_FILE": str(instruments),
        "TRADECORE_TOPIC_PREFIX": topic_prefix,
        **extra_env,
    }
    # The namespace's topics are deleted afterwards only if this server's start created them: a test may serve an
    # API over a log other tests still read.
    ours = not namespace_exists(endpoints.kafka_bootstrap, topic_prefix)
    subprocess.run([str(launch.TRADECORE), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([str(launch.TRADECORE), "topics", "ensure"], env=env, check=True, capture_output=True)
    server = ApiServer.start(workdir / "api.log", env, topic_prefix, secret, endpoints)
    try:
        yield server
    finally:
        server.stop()
        if ours:
            drop_namespace(endpoints.kafka_bootstrap, topic_prefix)
