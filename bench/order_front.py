"""CPU per ``POST /v1/orders`` in the API's own layers: the app's ASGI callable driven directly (no server, no
socket), the command gateway stubbed (no Postgres, no Kafka), 32 requests in flight — what ``api.order_entry``'s
front costs against the framework's path, free of the machine's noise that the end-to-end bench
(``bench/order_entry.py``) carries.

    .venv/bin/python bench/order_front.py                        # this tree: the front, and the framework's path
    PYTHONPATH=/tmp/wt-base .venv/bin/python bench/order_front.py --modes framework   # another tree's code

Each mode runs ``--repeat`` rounds of ``--requests`` valid orders (one account, a real token); the median CPU time
per request is reported, and the last stdout line is one JSON object with every round.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from fastapi import FastAPI
from starlette.types import Message

from api.app import create_app
from api.auth import Authenticator, Role, add_user
from api.deps import Services
from api.ratelimit import RateLimiter
from api.settings import ApiSettings
from api.users import UsersFile
from bench.common import http_scope
from commands.decide import Stamp, order_id_for
from commands.gateway import Appended, Headers, Placed
from commands.models import PlaceOrder

CONCURRENCY = 32
EXAMPLE = PlaceOrder.model_json_schema()["examples"][0]  # the documented order, one client order id a request


class _Gateway:
    """Places every order at once, where the real gateway's group commit would wait on Postgres and Kafka."""

    async def place(self, command: PlaceOrder, stamp: Stamp, headers: Headers | None = None) -> Placed:
        await asyncio.sleep(0)
        return Placed(order_id_for(command.account_id, command.client_order_id), Appended("orders", 0, 1))


def _app(front: bool) -> tuple[FastAPI, str]:
    """The API app with stubbed services, and a trader's token; ``front`` False: without ``api.order_entry``."""
    users = Path(tempfile.mkdtemp()) / "users.toml"
    add_user(users, "alice", "pw", [Role.TRADER], ["ACC-1"])
    settings = ApiSettings(jwt_secret="x" * 32, users_file=users)
    app = create_app(settings)
    if not front and "build_middleware_stack" in vars(app):
        del app.build_middleware_stack  # the class's own: the framework's stack alone
    authenticator = Authenticator(settings, UsersFile(users, settings.users_recheck_s))
    services: dict[str, Any] = dict.fromkeys(Services.__dataclass_fields__)  # what placing an order never touches
    services.update(
        authenticator=authenticator,
        gateway=_Gateway(),
        account_limiter=RateLimiter("1000000/second", "account"),
        order_wait_timeout_s=1.0,
    )
    app.state.services = Services(**services)
    return app, authenticator.issue(authenticator.login("alice", "pw"))


async def _place(app: FastAPI, token: str, i: int) -> None:
    body = json.dumps({**EXAMPLE, "client_order_id": f"c-{i}"}).encode()
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", b"Bearer " + token.encode()),
    ]
    scope = http_scope("POST", "/v1/orders", headers)
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    statuses: list[int] = []

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [202]:
        raise RuntimeError(f"POST /v1/orders answered {statuses}")


async def _round(app: FastAPI, token: str, requests: int, first: int) -> None:
    for start in range(first, first + requests, CONCURRENCY):
        await asyncio.gather(*(_place(app, token, i) for i in range(start, start + CONCURRENCY)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="front,framework", help="front, framework, or both (comma-separated)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per mode, alternating")
    args = parser.parse_args(argv)
    apps = {mode: _app(mode == "front") for mode in args.modes.split(",")}
    gc.collect()
    gc.freeze()  # as the API does after start-up
    loop = asyncio.new_event_loop()
    sent = 0
    for app, token in apps.values():  # warm: the middleware stack built, the caches filled
        loop.run_until_complete(_round(app, token, 2_000, sent))
        sent += 2_000
    rounds: dict[str, list[float]] = {mode: [] for mode in apps}
    for _ in range(args.repeat):
        for mode, (app, token) in apps.items():
            started = time.process_time()
            loop.run_until_complete(_round(app, token, args.requests, sent))
            sent += args.requests
            rounds[mode].append((time.process_time() - started) / args.requests * 1e6)
    for mode, cpu in rounds.items():
        each = ", ".join(f"{c:.1f}" for c in cpu)
        print(f"{mode:>10}: {statistics.median(cpu):6.1f} µs CPU per request (rounds: {each})")
    print(json.dumps({"benchmark": "order_front", "requests": args.requests, "cpu_us_per_request": rounds}))


if __name__ == "__main__":
    main()
