"""Where a process sends its OpenTelemetry spans (how records carry trace context: ``streams.kafka.tracing``).

Export is configured by the standard variables: ``OTEL_TRACES_EXPORTER`` (``otlp``, ``console`` or ``none``),
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP over HTTP/protobuf),
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, ``OTEL_SDK_DISABLED``. With none
of them set the process records nothing, yet still passes the context it received on, at no cost worth counting.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from streams.errors import TelemetryConfigError


def configure(service: str) -> bool:
    """Install the SDK's tracer provider when the ``OTEL_*`` variables ask for an exporter; whether they did."""
    exporter = _exporter_from_environment()
    if exporter is None:
        return False
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"tradecore-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


def _exporter_from_environment() -> SpanExporter | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none").strip().lower()
    if kind == "otlp":
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        if protocol not in (None, "http/protobuf"):
            raise TelemetryConfigError(
                f"OTLP protocol {protocol!r} is not supported here",
                hint="use OTLP over HTTP: OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and the collector's port 4318",
            )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout, compression: from OTEL_EXPORTER_OTLP_*
    if kind == "console":
        return ConsoleSpanExporter()
    if kind == "none":
        return None
    raise TelemetryConfigError(
        f"OTEL_TRACES_EXPORTER={kind!r} is not supported", hint="set OTEL_TRACES_EXPORTER to otlp, console or none"
    )
