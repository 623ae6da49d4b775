"""The command API as users run it: `tradecore api` in its own process, against the real stack."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.auth import Role, add_user
from deploy.local.stack import Endpoints
from tests.support.ports import free_port_block, listening
from tests.support.stack import drop_namespace, namespace_exists

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
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict)
    _process: list[subprocess.Popen[bytes]] = field(default_factory=list)  # the running one, replaced by restart
    _command: tuple[str, dict[str, str], Path] | None = None

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the API (SIGTERM), stay down ``down_s``, and start it again on the same port."""
        assert self._command is not None
        proc = self._process.pop()
        proc.terminate()
        proc.wait(timeout=30)
        time.sleep(down_s)
        tradecore, env, log = self._command
        port = int(self.url.rsplit(":", 1)[1])
        started, _ = _start(tradecore, env, log, port)
        self._process.append(started)

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
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    # The namespace's topics are deleted afterwards only if this server's start created them: a test may serve an
    # API over a log other tests still read.
    ours = not namespace_exists(endpoints.kafka_bootstrap, topic_prefix)
    subprocess.run([tradecore, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([tradecore, "topics", "ensure"], env=env, check=True, capture_output=True)
    log = workdir / "api.log"
    proc, port = _start(tradecore, env, log)
    server = ApiServer(f"http://127.0.0.1:{port}", topic_prefix, secret, endpoints, _process=[proc])
    server._command = (tradecore, env, log)
    try:
        yield server
    finally:
        for running in server._process:
            running.terminate()
            running.wait(timeout=30)
        if ours:
            drop_namespace(endpoints.kafka_bootstrap, topic_prefix)


def _start(
    tradecore: str, env: dict[str, str], log: Path, fixed_port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start `tradecore api` on a free port (or ``fixed_port``), and wait until *it* listens there and answers.

    Other test runs on the machine pick ports too: one may take the port between the check and the bind, and
    answer in our API's place. So the listener is checked to be our process, and a lost race is run again.
    """
    for _ in range(5):
        port = fixed_port or free_port_block((0,), start=random.randrange(30000, 32000))
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [tradecore, "api"], env={**env, "TRADECORE_PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while proc.poll() is None and not listening(proc.pid, port):
            assert time.monotonic() < deadline, f"the API did not listen: {log.read_text()}"
            time.sleep(0.2)
        if proc.poll() is not None:
            said = log.read_text()
            assert "address already in use" in said.lower(), f"the API exited: {said}"
            continue  # lost the port to another process: another one
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
                return proc, port
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, f"the API did not answer: {log.read_text()}"
                time.sleep(0.2)
    raise AssertionError("no free port for the API after 5 tries")
