"""W3C trace context in Kafka header lists: what the processors read from and write to every record's headers."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from streams import tracing
from streams.errors import TelemetryConfigError
from streams.kafka import tracing as record_tracing


def test_a_span_context_round_trips_through_kafka_headers_beside_the_others() -> None:
    span = TracerProvider().get_tracer("test").start_span("command")
    headers = record_tracing.inject(trace.set_span_in_context(span), [("tradecore.reason", b"kept")])
    assert [name for name, _ in headers] == ["tradecore.reason", "traceparent"]
    found = trace.get_current_span(record_tracing.extract(headers)).get_span_context()
    sent = span.get_span_context()
    assert (found.trace_id, found.span_id, found.is_remote, found.trace_flags.sampled) == (
        sent.trace_id,
        sent.span_id,
        True,
        True,
    )


@pytest.mark.parametrize(
    "headers",
    [None, [], [("tradecore.reason", b"x")], [("traceparent", b"not a traceparent")], [("traceparent", b"\xff\x00")]],
)
def test_records_without_a_valid_traceparent_start_no_trace(headers: list[tuple[str, bytes]] | None) -> None:
    assert not trace.get_current_span(record_tracing.extract(headers)).get_span_context().is_valid
    # And nothing is passed on for them.
    assert record_tracing.inject(record_tracing.extract(headers)) == []


def test_tracing_is_off_without_otel_variables_and_an_unknown_exporter_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure("test") is False
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with pytest.raises(TelemetryConfigError, match="zipkin"):
        tracing.configure("test")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(TelemetryConfigError, match="grpc"):
        tracing.configure("test")


def test_with_tracing_off_a_processor_passes_the_consumed_traceparent_on_unchanged() -> None:
    traceparent = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert record_tracing.handed_on(None, [("tradecore.reason", b"x"), traceparent]) == [traceparent]
    assert record_tracing.handed_on(None, [("tradecore.reason", b"x")]) is None
    assert record_tracing.handed_on(None, None) is None
