"""Request bodies: a size limit per route, enforced while the body streams in, and JSON read strictly.

Strict JSON: a key given twice in one object is refused (the last would silently win — an order once went to the
account named second), and a JSON number keeps its text, so a decimal field can refuse one that is not exact in the
wire grammar (``1e3``, ``NaN``) instead of taking what a float made of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import BodyRefused
from api.problems import problem
from commands.models import DECIMAL_GRAMMAR, JsonNumberText

_DECIMAL = re.compile(DECIMAL_GRAMMAR)


def _too_large(limit: int) -> BodyRefused:
    message = f"the body is larger than the {limit} bytes this route takes"
    return BodyRefused(413, message, [{"field": "body", "rule": "body.max_size", "message": message}])


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            message = f"{key!r} is given more than once in one object"
            raise BodyRefused(422, message, [{"field": key, "rule": "json.duplicate_key", "message": message}])
        found[key] = value
    return found


def _number(text: str) -> Decimal | JsonNumberText:
    return Decimal(text) if _DECIMAL.fullmatch(text) else JsonNumberText(text)


def loads(body: bytes) -> Any:
    """The JSON document in ``body``: objects without repeated keys, non-integer numbers exact or marked inexact."""
    return json.loads(body, object_pairs_hook=_no_duplicates, parse_float=_number, parse_constant=JsonNumberText)


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is read by ``loads`` (by ``request_class``'s ``json``)."""

    request_class: type[Request] = StrictJsonRequest

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        request_class = self.request_class

        async def strict(request: Request) -> Response:
            # One that is already of the class may have read the body (which only the instance keeps): kept.
            reading = request if isinstance(request, request_class) else request_class(request.scope, request.receive)
            return await handler(reading)

        return strict


class BodyLimit:
    """ASGI middleware: at most ``limits[path]`` bytes of body (``default`` elsewhere), else 413 problem+json.

    A declared Content-Length over the limit is refused before any of the body is read; a body streamed without one
    is counted as it arrives and refused at the first chunk past the limit, so a huge body is never held whole.
    """

    def __init__(self, app: ASGIApp, *, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            refused = _too_large(limit)
            answer = problem(Request(scope), 413, "Content too large", refused.detail, errors=refused.errors)
            await answer(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, counted, send)
