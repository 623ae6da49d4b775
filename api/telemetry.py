"""Request metrics (an ASGI middleware and ``/metrics``), and what FastAPI's own OpenTelemetry support traces.

FastAPI makes each HTTP request one SERVER span (continuing a caller's W3C ``traceparent``) once a tracer provider
is configured (``streams.tracing.configure``); the events a request appends carry that span's context in their
Kafka headers (``streams.eventlog``). Request counts and latencies are labelled by route template
(``/v1/orders/{order_id}``), never by raw path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Response
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
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


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED


# Server spans only: metrics are prometheus-client's (below); FastAPI's log records could carry request bodies
# (passwords at /v1/auth/token), and its per-operation spans cost more than they tell on this hot path.
TRACING: TelemetryConfig = {"metrics": False, "logs": False, "operation_spans": False, "exclude": _untraced}

router = APIRouter()


# prometheus_client's own variable: where each process of a multi-process server keeps its samples, in files the
# scrape adds up (its "multiprocess mode"). Read when prometheus_client is imported, so set before a worker starts.
SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Each sample is written to its file's memory map as it changes, on every request: on a disk's filesystem the kernel
# writes those pages back every few seconds, onto the disk Postgres and Kafka flush to. On tmpfs they stay in memory.
_IN_MEMORY = "/dev/shm"


@contextmanager
def shared_across(workers: int) -> Iterator[None]:
    """Metrics shared by the ``workers`` processes of one API: with more than one, each keeps its samples in a
    directory of files for this run (``SHARED_DIR``, removed at the end; one the environment names is used as it is)
    and ``/metrics`` answers their sum — without it a scrape saw the counters of whichever process it reached, and
    successive scrapes went up and down between processes. One worker keeps them in memory, as before."""
    if workers <= 1 or os.environ.get(SHARED_DIR):
        yield
        return
    directory = tempfile.mkdtemp(
        prefix="tradecore-metrics-", dir=_IN_MEMORY if os.access(_IN_MEMORY, os.W_OK) else None
    )
    os.environ[SHARED_DIR] = directory
    try:
        yield
    finally:
        del os.environ[SHARED_DIR]
        shutil.rmtree(directory, ignore_errors=True)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    """Every metric of the API, in Prometheus' text format: the sum over its worker processes when it has several
    (``shared_across``), else this process's own, with its process and runtime collectors."""
    registry = REGISTRY
    if os.environ.get(SHARED_DIR):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware counting and timing every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            found: Any = scope.get("route")  # set by the router once a route matched
            key = (scope["method"], getattr(found, "path", "unmatched"), status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    REQUESTS.labels(key[0], key[1], str(status)),
                    REQUEST_LATENCY.labels(key[0], key[1]),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
