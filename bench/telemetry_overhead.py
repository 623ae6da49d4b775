"""Telemetry overhead (issue 7): what metrics and traces add per processed record and per HTTP request, beside
what a raw confluent-kafka producer spends per record, all in one run.

    .venv/bin/python bench/telemetry_overhead.py [--records 20000] [--requests 5000] [--repeat 5]

Measured, each ``--repeat`` times (medians reported), in µs:

* per record in the processor host: the calls ``streams.host.runner`` makes for each live record — continue the
  trace from the record's ``traceparent`` header (``streams.tracing.consuming``), count and time it
  (``ProcessorMetrics.consumed``), hand the context on (``tracing.handed_on``), count an output
  (``ProcessorMetrics.produced``, ``observe_output``), end the span — with tracing off (no ``OTEL_*``: the default)
  and on (the SDK with a batch processor, every span sampled and exported to a sink);
* per HTTP request: ``api.telemetry.RequestMetrics`` around a bare ASGI app, minus the bare app; and a FastAPI app
  with the project's telemetry config (``api.telemetry.TRACING``) with tracing off, on, and on but the request
  sampled out (``parentbased_traceidratio`` 0), each minus the same app with FastAPI's telemetry disabled or off;
* the reference: ``confluent_kafka.Producer.produce`` of one 200-byte record with the project's producer config
  (``streams.kafka.producer``) to a real topic, per record (flushed at the end, the flush included).

Progress goes to stderr, the table to stdout, and the last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from rich.console import Console
from rich.table import Table

from api.telemetry import TRACING, RequestMetrics
from streams import kafka
from streams.kafka import tracing
from streams.metrics import ProcessorMetrics, observe_output
from streams.settings import KafkaSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' event builders: one valid OrderAccepted
from bench.common import http_scope
from tests.support.events import order_accepted

progress = Console(stderr=True)


class Sink(SpanExporter):
    """Exports nowhere: what the SDK costs, without a collector's network time."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def timed(repeat: int, count: int, run: Callable[[], None]) -> float:
    """Median µs per item over ``repeat`` runs of ``run`` (which handles ``count`` items)."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        runs.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(runs)


def host_records(count: int) -> Callable[[], None]:
    metrics = ProcessorMetrics("bench", "b.", "b.")
    event = order_accepted()
    caller = TracerProvider().get_tracer("caller").start_span("POST /v1/orders")
    headers = tracing.inject(trace.set_span_in_context(caller))

    def run() -> None:
        on = tracing.recording()  # the host asks once per session
        for offset in range(count):
            span = tracing.consuming("bench process orders", headers, 0, offset) if on else None
            metrics.consumed("b.orders", 1_700_000_000_000)
            tracing.handed_on(span, headers)
            metrics.produced("b.orders.checked")
            observe_output(event, live=True)
            if span is not None:
                span.end()

    return run


def bare_loop(count: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(count):
            pass

    return run


async def _plain(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def asgi_requests(app: Any, count: int, path: str = "/v1/ping") -> Callable[[], None]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def many() -> None:
        for _ in range(count):
            scope = http_scope("GET", path, [(b"host", b"bench")])
            await app(scope, receive, send)

    return lambda: asyncio.run(many())


DISABLED: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def fastapi_app(telemetry: TelemetryConfig) -> FastAPI:
    app = FastAPI(telemetry=telemetry)

    @app.get("/v1/ping")
    async def ping() -> dict[str, str]:
        return {}

    return app


def raw_produce(settings: KafkaSettings, count: int) -> Callable[[], None]:
    topic = f"bench-telemetry-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(settings)
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = kafka.producer(settings)
    value = b"x" * 200

    def run() -> None:
        for i in range(count):
            while True:
                try:
                    producer.produce(topic, key=str(i % 64).encode(), value=value)
                    break
                except BufferError:
                    producer.poll(0.01)
            producer.poll(0)
        producer.flush(60)

    run.topic = topic  # type: ignore[attr-defined]
    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    n, r, k = args.records, args.requests, args.repeat
    us: dict[str, float] = {}

    progress.print("per-record host telemetry, tracing off …")
    us["loop"] = timed(k, n, bare_loop(n))
    us["record_off"] = timed(k, n, host_records(n)) - us["loop"]
    progress.print("per-request metrics middleware …")
    us["asgi_bare"] = timed(k, r, asgi_requests(_plain, r))
    us["asgi_metrics"] = timed(k, r, asgi_requests(RequestMetrics(_plain), r))
    progress.print("FastAPI request, tracing off, and with FastAPI's telemetry disabled …")
    us["fastapi_off"] = timed(k, r, asgi_requests(fastapi_app(TRACING), r))
    us["fastapi_disabled"] = timed(k, r, asgi_requests(fastapi_app(DISABLED), r))

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Sink(), max_queue_size=65536))
    trace.set_tracer_provider(provider)
    progress.print("per-record host telemetry, tracing on (SDK, every span sampled) …")
    us["record_on"] = timed(k, n, host_records(n)) - us["loop"]
    progress.print("FastAPI request, tracing on …")
    us["fastapi_on"] = timed(k, r, asgi_requests(fastapi_app(TRACING), r))
    progress.print("FastAPI request, tracing on, sampled out (ratio 0) …")
    sampled_out = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)))
    us["fastapi_sampled_out"] = timed(k, r, asgi_requests(fastapi_app({**TRACING, "tracer_provider": sampled_out}), r))
    provider.shutdown()

    progress.print("reference: raw confluent-kafka produce per record …")
    settings = KafkaSettings()
    produce = raw_produce(settings, n)
    us["raw_produce"] = timed(k, n, produce)
    kafka.admin(settings).delete_topics([produce.topic])  # type: ignore[attr-defined]

    rows = [
        ("host record: metrics + span, tracing off", us["record_off"]),
        ("host record: metrics + span, tracing on", us["record_on"]),
        ("HTTP request: RequestMetrics middleware", us["asgi_metrics"] - us["asgi_bare"]),
        ("HTTP request: FastAPI telemetry, tracing off", us["fastapi_off"] - us["fastapi_disabled"]),
        ("HTTP request: FastAPI server span, tracing on", us["fastapi_on"] - us["fastapi_off"]),
        ("HTTP request: tracing on, request sampled out", us["fastapi_sampled_out"] - us["fastapi_off"]),
        ("reference: raw producer, per record", us["raw_produce"]),
    ]
    table = Table("added per item", "µs (median)", f"÷ raw produce ({us['raw_produce']:.2f} µs)")
    for label, value in rows:
        table.add_row(label, f"{value:.2f}", f"{value / us['raw_produce']:.2f}")
    Console().print(table)
    Console().print(
        f"a FastAPI request itself (telemetry disabled): {us['fastapi_disabled']:.1f} µs; {k} repeats, medians"
    )
    result = {
        "benchmark": "telemetry_overhead",
        "records": n,
        "requests": r,
        "repeat": k,
        "us": {key: round(value, 3) for key, value in us.items()},
        "added_us": {label: round(value, 3) for label, value in rows[:6]},
        "ratio_to_raw_produce": {label: round(value / us["raw_produce"], 3) for label, value in rows[:6]},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
