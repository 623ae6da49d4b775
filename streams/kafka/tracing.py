"""W3C trace context in Kafka record headers, never in the event payload: payloads stay byte-identical on replay.

A trace starts at the HTTP command; the command API puts its context in the headers of the records it appends,
and every hosted processor (and the projector) continues the trace of the record it consumed and hands it on in
the headers of what it derives. Which exporter records the spans is set up by ``streams.tracing.configure``; with
none the process records nothing, yet still passes the context it received on, at no cost worth counting.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import ProxyTracerProvider, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

KafkaHeaders = list[tuple[str, bytes]]

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("tradecore.streams")
TRACEPARENT = "traceparent"


class _HeaderGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        found = [value.decode("latin-1") for name, value in carrier if name == key and value is not None]
        return found or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [name for name, _ in carrier]


class _HeaderSetter(Setter[KafkaHeaders]):
    def set(self, carrier: KafkaHeaders, key: str, value: str) -> None:
        carrier.append((key, value.encode("latin-1")))


_getter, _setter = _HeaderGetter(), _HeaderSetter()


def extract(headers: KafkaHeaders | None) -> Context:
    """The trace context a consumed record carries (an empty context when it carries none)."""
    return _propagator.extract(headers, getter=_getter) if headers else Context()


def inject(context: Context | None = None, headers: KafkaHeaders | None = None) -> KafkaHeaders:
    """``headers`` (or a new list) with the trace context of ``context`` (default: the current one) added."""
    carrier: KafkaHeaders = [] if headers is None else headers
    _propagator.inject(carrier, context=context, setter=_setter)
    return carrier


def current() -> dict[str, str]:
    """The current trace context as W3C headers (``{"traceparent": ...}``), empty outside a trace: what a command
    takes with it when it is appended later, from another task (a group commit's batch)."""
    return {name: value.decode() for name, value in inject()}


def recording() -> bool:
    """Whether a tracer provider is installed (``configure``, or a test's); if not, spans cost nothing to skip."""
    return not isinstance(trace.get_tracer_provider(), ProxyTracerProvider)


def consuming(name: str, headers: KafkaHeaders | None, partition: int, offset: int) -> Span:
    """A CONSUMER span continuing the trace a consumed record carries (a new trace when it carries none)."""
    attributes = {"messaging.destination.partition.id": partition, "messaging.kafka.offset": offset}
    return _tracer.start_span(name, context=extract(headers), kind=SpanKind.CONSUMER, attributes=attributes)


def handed_on(span: Span | None, consumed: KafkaHeaders | None) -> KafkaHeaders | None:
    """Headers carrying the trace on to the records a consumed one causes: ``span``'s context, or without a span
    (tracing off) the consumed record's own ``traceparent``, unparsed. None when there is no trace to carry."""
    if span is not None:
        return inject(trace.set_span_in_context(span)) or None
    if not consumed:
        return None
    return [header for header in consumed if header[0] == TRACEPARENT] or None
