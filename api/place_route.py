"""`POST /v1/orders` at the framework's floor (issue 16 item 3): which requests are plainly valid, and how one is
answered without FastAPI.

FastAPI documents the route and stays its definition: ``api.routers.orders.place_order``'s parameters, dependencies
and body model. A request whose every input is plainly valid — a JSON body ``place_body.decode`` takes whole, headers
and ``?wait=`` within their rules — is answered by calling the same dependencies and the endpoint directly
(``Placer``), without FastAPI's per-request dependency solving and body validation; ``api.order_entry`` does so in
front of Starlette's middleware and router. Any other request (a body msgspec declines, a header over its length, an
unknown ``wait``, a header or parameter given twice) goes through FastAPI as before, so its answer is FastAPI's, word
for word. A missing or bad token is refused by the same dependency either way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from api.bodies import StrictJsonRequest, StrictJsonRoute
from api.deps import CommandStamp, CurrentPrincipal, Services, Trader, bearer, dependency
from api.models import WaitFor
from api.place_body import decode
from commands.models import PlaceOrder

# What FastAPI checks of the headers and the query (api.deps.IdempotencyKey, _stamp; orders.WaitFor): a request
# outside these bounds goes to FastAPI, which words the 422.
_HEADER_MAX = 128
_WAITS = {wait.value: wait for wait in WaitFor}
_WAIT_MAX = max(map(len, _WAITS))
_PARAMETERS = ("command", "principal", "services", "stamp", "idempotency_key", "wait")


class _PlaceOrderRequest(StrictJsonRequest):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # FastAPI validates what this returns against PlaceOrder: a PlaceOrder passes as it is.
            self._json = decode(await self.body()) or await super().json()
        return self._json


class PlaceOrderRoute(StrictJsonRoute):
    """The place-order route as FastAPI runs it, for every request ``api.order_entry`` leaves to the framework: a
    body msgspec takes is handed to pydantic already decoded."""

    request_class = _PlaceOrderRequest


@dataclass(frozen=True, slots=True)
class Plain:
    """The inputs of a plainly valid request, as the endpoint takes them."""

    command: PlaceOrder
    correlation_id: str | None
    idempotency_key: str | None
    wait: WaitFor | None


def _json_body(request: Request) -> bool:
    """Whether FastAPI would read the body as JSON (its rule, narrowed to the media type clients send)."""
    kind = request.headers.get("content-type", "")
    return kind.partition(";")[0].strip().lower() == "application/json"


class _Judge(Exception):
    """A header or parameter FastAPI must judge."""


def _one(values: list[str], most: int) -> str | None:
    """The one value of a header or parameter (None when absent); _Judge when FastAPI must judge it."""
    if not values:
        return None
    if len(values) > 1 or not 1 <= len(values[0]) <= most:
        raise _Judge
    return values[0]


def plain(request: Request, body: bytes) -> Plain | None:
    """``request``'s inputs (``body`` its whole body) when each is plainly valid; else None: FastAPI judges it."""
    try:
        correlation = _one(request.headers.getlist("x-correlation-id"), _HEADER_MAX)
        key = _one(request.headers.getlist("idempotency-key"), _HEADER_MAX)
        wait = _one(request.query_params.getlist("wait"), _WAIT_MAX) if request.scope["query_string"] else None
    except _Judge:
        return None
    if wait is not None and wait not in _WAITS:
        return None
    command = decode(body) if _json_body(request) else None
    if command is None:
        return None
    return Plain(command, correlation, key, None if wait is None else _WAITS[wait])


class Placer:
    """Answers a plainly valid request as FastAPI would: the route's own dependencies, then its endpoint."""

    def __init__(self, endpoint: Callable[..., Any]) -> None:
        if tuple(inspect.signature(endpoint).parameters) != _PARAMETERS:  # the floor passes exactly these
            raise TypeError(f"{endpoint.__name__} takes {_PARAMETERS}; update {__name__} with it")
        self._endpoint = endpoint
        self._allowed, self._principal, self._stamp = (
            dependency(Trader),
            dependency(CurrentPrincipal),
            dependency(CommandStamp),
        )

    async def __call__(self, request: Request, given: Plain, services: Services) -> Response:
        principal = await self._allowed(await self._principal(services, await bearer(request)))
        response: Response = await self._endpoint(
            command=given.command,
            principal=principal,
            services=services,
            stamp=await self._stamp(given.correlation_id),
            idempotency_key=given.idempotency_key,
            wait=given.wait,
        )
        return response
