"""`POST /v1/orders` in front of Starlette's middleware and router (issue 16 item 3).

``OrderEntry`` is the outermost layer of the app's middleware stack, inside FastAPI's telemetry (the request's
SERVER span, continuing a caller's ``traceparent``, which the appended events carry on in their Kafka headers). A
``POST /v1/orders`` with a declared Content-Length within the body limit has its body read here; when
``place_route.plain`` takes the request it is answered by the route's own dependencies and endpoint
(``place_route.Placer``) through the same error handling, request metrics and route telemetry the framework gives
it — without the body-limit layers, the router and its included routers, and the route's per-request wrapping.
Every other request, and every one ``plain`` declines, goes on to the framework with its body as it arrived, so
its answer (413, 422, ...) is the framework's, word for word.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.telemetry._api import _route_selected
from fastapi.telemetry._asgi import ExceptionTelemetryMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.place_route import Placer, plain
from api.telemetry import RequestMetrics

_GIVEN = "tradecore.place_order"  # the plain request's inputs, in the scope for the answering layer


async def _read(receive: Receive, most: int) -> tuple[list[Message], bytes | None]:
    """The messages read, and the body they carried: None when it did not arrive whole within ``most`` bytes."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > most:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive giving ``messages`` again, then the server's."""
    given: Iterator[Message] = iter(messages)

    async def replay() -> Message:
        return next(given, None) or await receive()

    return replay


class OrderEntry:
    """ASGI: a plainly valid ``POST`` to ``route`` answered here, every other request passed on to ``app``."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, route: APIRoute, body_max: int) -> None:
        self.app = app
        self._route = route
        self._body_max = body_max
        self._placer = Placer(route.endpoint)
        # The error handling Starlette builds around every request (build_middleware_stack), and the metrics.
        handlers: dict[Any, Any] = fastapi.exception_handlers
        unexpected = [handler for key, handler in handlers.items() if key in (500, Exception)]
        handled = {key: handler for key, handler in handlers.items() if key not in (500, Exception)}
        self._answer = ServerErrorMiddleware(
            ExceptionTelemetryMiddleware(
                RequestMetrics(ExceptionMiddleware(self._place, handlers=handled, debug=fastapi.debug))
            ),
            handler=unexpected[-1] if unexpected else None,
            debug=fastapi.debug,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self._route.path
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        declared = request.headers.get("content-length")
        if declared is None or not declared.isdigit() or int(declared) > self._body_max:
            await self.app(scope, receive, send)  # streamed, or over the limit: BodyLimit's to judge
            return
        messages, body = await _read(receive, self._body_max)
        given = None if body is None else plain(request, body)
        if given is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        scope["route"] = self._route  # what the router sets: the metrics' route template
        _route_selected(scope=scope, path=self._route.path_format)  # the SERVER span's http.route, as the router's
        scope[_GIVEN] = given
        await self._answer(scope, receive, send)

    async def _place(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._placer(Request(scope, receive), scope.pop(_GIVEN), scope["app"].state.services)
        await response(scope, receive, send)


def install(app: FastAPI, route: APIRoute, body_max: int) -> None:
    """Put ``OrderEntry`` for ``route`` (its body limit ``body_max``) in front of the middleware stack the app
    builds at its first request."""
    build = app.build_middleware_stack

    def built() -> ASGIApp:
        return OrderEntry(build(), app, route, body_max)

    app.build_middleware_stack = built  # type: ignore[method-assign]
