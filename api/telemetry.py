"""Request metrics and the trace every command starts: one small ASGI middleware, and ``/metrics``.

Each HTTP request is one SERVER span (continuing a caller's W3C ``traceparent`` if it sends one); the events the
request appends carry that span's context in their Kafka headers (``streams.eventlog``). Request counts and
latencies are labelled by route template (``/v1/orders/{order_id}``), never by raw path.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from opentelemetry import context, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "tradecore_http_requests", "HTTP requests answered, by method, route and status.", ["method", "route", "status"]
)
REQUEST_LATENCY = Histogram(
    "tradecore_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Probes and scrapes are counted but not traced: they are not what a trace is for.
UNTRACED = frozenset({"/metrics", "/healthz", "/readyz"})

router = APIRouter()
tracer = trace.get_tracer("tradecore.api")
_propagator = TraceContextTextMapPropagator()


class _AsgiHeaders(Getter[list[tuple[bytes, bytes]]]):
    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.encode("latin-1")
        found = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


_getter = _AsgiHeaders()


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Every metric of this process, in Prometheus' text format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class Telemetry:
    """ASGI middleware: a server span per request and the request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        if scope["path"] in UNTRACED:
            try:
                await self.app(scope, receive, sending)
            finally:
                self._count(scope, method, status, started)
            return
        span = tracer.start_span(
            method, context=_propagator.extract(scope["headers"], getter=_getter), kind=SpanKind.SERVER
        )
        token = context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, sending)
        finally:
            route = self._count(scope, method, status, started)
            if span.is_recording():
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
            span.end()
            context.detach(token)

    def _count(self, scope: Scope, method: str, status: int, started: float) -> str:
        found: Any = scope.get("route")
        route: str = getattr(found, "path", "unmatched")
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                REQUESTS.labels(method, route, str(status)),
                REQUEST_LATENCY.labels(method, route),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
        return route
