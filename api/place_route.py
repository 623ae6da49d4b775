"""`POST /v1/orders` at the framework's floor (issue 16 item 3).

FastAPI documents the route and stays its definition: ``api.routers.orders.place_order``'s parameters, dependencies
and body model. A request whose every input is plainly valid — a JSON body ``place_body.decode`` takes whole, headers
and ``?wait=`` within their rules — is answered by calling the same dependencies and the endpoint directly, without
FastAPI's per-request dependency solving and body validation (a fifth of the server's CPU on this route, profiled:
docs/PERFORMANCE.md). Any other request (a body msgspec declines, a header over its length, an unknown ``wait``, a
header or parameter given twice) goes through FastAPI as before, so its answer is FastAPI's, word for word. A
missing or bad token is refused by the same dependency either way.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response

from api.bodies import StrictJsonRequest, StrictJsonRoute
from api.deps import CommandStamp, CurrentPrincipal, Trader, bearer, dependency
from api.models import WaitFor
from api.place_body import decode

# What FastAPI checks of the headers and the query (api.deps.IdempotencyKey, _stamp; orders.WaitFor): a request
# outside these bounds goes to FastAPI, which words the 422.
_HEADER_MAX = 128
_WAITS = {wait.value: wait for wait in WaitFor}
_PARAMETERS = ("command", "principal", "services", "stamp", "idempotency_key", "wait")


class _PlaceOrderRequest(StrictJsonRequest):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            # FastAPI validates what this returns against PlaceOrder: a PlaceOrder passes as it is.
            self._json = decode(await self.body()) or await super().json()
        return self._json


def _json_body(request: Request) -> bool:
    """Whether FastAPI would read the body as JSON (its rule, narrowed to the media type clients send)."""
    kind = request.headers.get("content-type", "")
    return kind.partition(";")[0].strip().lower() == "application/json"


def _one(values: list[str], most: int) -> str | bool | None:
    """The one value of a header or parameter (None when absent), or False when FastAPI must judge it."""
    if not values:
        return None
    if len(values) > 1 or not 1 <= len(values[0]) <= most:
        return False
    return values[0]


class PlaceOrderRoute(StrictJsonRoute):
    """The place-order route: plainly valid requests at the floor, every other one through FastAPI."""

    request_class = _PlaceOrderRequest

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        framework = super().get_route_handler()
        endpoint = self.endpoint
        if tuple(inspect.signature(endpoint).parameters) != _PARAMETERS:  # the floor passes exactly these
            raise TypeError(f"{endpoint.__name__} takes {_PARAMETERS}; update {__name__} with it")
        allowed, principal_of, stamp_of = dependency(Trader), dependency(CurrentPrincipal), dependency(CommandStamp)

        async def floor(request: Request) -> Response:
            placing = _PlaceOrderRequest(request.scope, request.receive)
            correlation = _one(placing.headers.getlist("x-correlation-id"), _HEADER_MAX)
            key = _one(placing.headers.getlist("idempotency-key"), _HEADER_MAX)
            wait = _one(placing.query_params.getlist("wait"), max(map(len, _WAITS)))
            if correlation is False or key is False or wait is False or (wait is not None and wait not in _WAITS):
                return await framework(placing)
            command = decode(await placing.body()) if _json_body(placing) else None
            if command is None:
                return await framework(placing)
            services = placing.app.state.services
            principal = await allowed(await principal_of(services, await bearer(placing)))
            response: Response = await endpoint(
                command=command,
                principal=principal,
                services=services,
                stamp=await stamp_of(correlation),
                idempotency_key=key,
                wait=None if wait is None else _WAITS[wait],
            )
            return response

        return floor
