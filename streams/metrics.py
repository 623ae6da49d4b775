"""Prometheus metrics of the stream side: every hosted processor, and the projector when it lands.

All are in prometheus-client's default registry, so ``serve`` (workers, projector) and the API's ``/metrics``
expose whatever the process defines. Labelled children are looked up once and kept: a labelled ``inc`` is then
well under a microsecond, which is what lets the host count every record.

Topic labels carry the topic name without its namespace prefix, so dashboards work in any namespace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from schemas.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionChanged,
)
from streams.errors import TelemetryConfigError

log = logging.getLogger("tradecore.metrics")

# Event time → processed: sub-millisecond on a quiet pipeline, seconds when a processor catches up.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

EVENTS_CONSUMED = Counter(
    "tradecore_events_consumed", "Records a processor consumed live, per input topic.", ["processor", "topic"]
)
EVENTS_PRODUCED = Counter(
    "tradecore_events_produced",
    "Records written, per output topic (processors; processor=api for the command API).",
    ["processor", "topic"],
)
PROCESSING_LATENCY = Histogram(
    "tradecore_processing_latency_seconds",
    "From an input record's event time to the moment the processor handled it.",
    ["processor", "topic"],
    buckets=LATENCY_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "tradecore_consumer_lag",
    "Records in an input partition after the processor's committed offset (high watermark - committed).",
    ["processor", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "tradecore_deadletters",
    "Records sent to the deadletter topic, by input topic and kind of reason (undecodable or the error's type).",
    ["processor", "topic", "reason"],
)
TRANSACTIONS = Counter(
    "tradecore_transactions",
    "Kafka transactions of a processor, by outcome (committed, aborted).",
    ["processor", "outcome"],
)
RESTARTS = Counter(
    "tradecore_processor_restarts", "Times a processor started over from its committed offsets.", ["processor"]
)
REPLAYED = Counter("tradecore_replayed_events", "Input records replayed to rebuild a processor's state.", ["processor"])
HELD_WAIT = Counter(
    "tradecore_merge_held_wait_seconds",
    "Seconds a processor waited for input while its event-time merge held records back: for an input at the end of "
    "its log to sit there its grace period, or for a slower input to catch up.",
    ["processor"],
)
REFETCHED = Counter(
    "tradecore_refetched_records",
    "Records a consumer handed over again after the host had taken them (dropped, not processed twice); any is a "
    "client fault worth reporting.",
    ["processor", "topic"],
)
CHECKPOINTS = Counter(
    "tradecore_checkpoints",
    "Partition checkpoints: written, restored, absent (full replay), unreadable (full replay; see the log).",
    ["processor", "outcome"],
)
ORDERS = Counter(
    "tradecore_orders",
    "Orders by outcome: risk's decision (accepted, rejected with its reason code) and the venue's end "
    "(filled, cancelled, expired).",
    ["outcome", "reason"],
)
POSITION_QUANTITY = Gauge(
    "tradecore_position_quantity", "An account's position in an instrument (positive long).", ["account", "instrument"]
)
REALIZED_PNL = Gauge(
    "tradecore_realized_pnl", "Realized profit and loss of a position, quote currency.", ["account", "instrument"]
)
FEES_PAID = Gauge("tradecore_fees_paid", "Fees paid on a position, quote currency.", ["account", "instrument"])

PROJECTOR_METRICS_PORT = 9300  # `tradecore project`'s default /metrics port (workers: 9400 + instance)


def expose(host: str, port: int | None, default: int) -> int | None:
    """Serve ``/metrics`` from a daemon thread on ``port`` (0: not at all), or when None on ``default``.

    A port asked for and taken is an error; a taken default only a warning (several processes on one host).
    Returns the port served on, if any.
    """
    if port == 0:
        return None
    chosen = default if port is None else port
    try:
        start_http_server(chosen, addr=host)
    except OSError as err:
        if port is not None:
            raise TelemetryConfigError(
                f"cannot serve metrics on {host}:{port}: {err.strerror}",
                hint="choose another port with --metrics-port (TRADECORE_METRICS_PORT); 0 turns metrics off",
            ) from err
        log.warning("metrics not served: the default port %d is taken; choose one with --metrics-port", default)
        return None
    log.info("metrics on http://%s:%d/metrics", host, chosen)
    return chosen


class ProcessorMetrics:
    """One processor's metrics, with its labelled children kept for the per-record path."""

    def __init__(self, processor: str, input_prefix: str, output_prefix: str) -> None:
        self.processor = processor
        self._cut, self._out_cut = len(input_prefix), len(output_prefix)
        self._consumed: dict[str, tuple[Counter, Histogram]] = {}
        self._produced: dict[str, Counter] = {}
        self._lagging: set[tuple[str, str]] = set()

    def consumed(self, topic: str, event_time_ms: int) -> None:
        counted, latency = self._consumed_children(topic)
        counted.inc()
        latency.observe(max(time.time() - event_time_ms / 1000, 0.0))

    def consumed_run(self, topic: str, event_times_ms: Sequence[int]) -> None:
        """``consumed`` for each of a run of records of ``topic``, at once."""
        counted, latency = self._consumed_children(topic)
        counted.inc(len(event_times_ms))
        lags = (time.time() * 1000 - np.asarray(event_times_ms, dtype=np.float64)) / 1000
        observe_all(latency, np.maximum(lags, 0.0))

    def _consumed_children(self, topic: str) -> tuple[Counter, Histogram]:
        children = self._consumed.get(topic)
        if children is None:
            name = topic[self._cut :]
            children = self._consumed[topic] = (
                EVENTS_CONSUMED.labels(self.processor, name),
                PROCESSING_LATENCY.labels(self.processor, name),
            )
        return children

    def produced(self, topic: str) -> None:
        child = self._produced.get(topic)
        if child is None:
            child = self._produced[topic] = EVENTS_PRODUCED.labels(self.processor, topic[self._out_cut :])
        child.inc()

    def dead_lettered(self, topic: str, reason: str) -> None:
        DEAD_LETTERS.labels(self.processor, topic[self._cut :], reason).inc()

    def transaction(self, outcome: str) -> None:
        TRANSACTIONS.labels(self.processor, outcome).inc()

    def restarted(self) -> None:
        RESTARTS.labels(self.processor).inc()

    def replayed(self, records: int) -> None:
        REPLAYED.labels(self.processor).inc(records)

    def held_wait(self, seconds: float) -> None:
        HELD_WAIT.labels(self.processor).inc(seconds)

    def refetched(self, topic: str, records: int) -> None:
        REFETCHED.labels(self.processor, topic[self._cut :]).inc(records)

    def checkpoint(self, outcome: str, count: int = 1) -> None:
        CHECKPOINTS.labels(self.processor, outcome).inc(count)

    def lag(self, topic: str, partition: int, records: int) -> None:
        labels = (topic[self._cut :], str(partition))
        self._lagging.add(labels)
        CONSUMER_LAG.labels(self.processor, *labels).set(records)

    def forget_lag(self) -> None:
        """The processor's partitions changed: drop the lag of those it may no longer own."""
        for labels in self._lagging:
            CONSUMER_LAG.remove(self.processor, *labels)
        self._lagging.clear()


# How an output event ends (or decides) an order: its outcome label and reason, or None when it does not.
_OUTCOMES: dict[type[Event], Callable[[Any], tuple[str, str] | None]] = {
    OrderAccepted: lambda e: ("accepted", ""),
    OrderRejected: lambda e: ("rejected", e.reason_code),
    OrderFilled: lambda e: ("filled", "") if e.leaves_quantity == 0 else None,
    OrderCancelled: lambda e: ("cancelled", ""),
    OrderExpired: lambda e: ("expired", ""),
}
_orders: dict[tuple[str, str], Counter] = {}


def observe_all(histogram: Histogram, amounts: npt.NDArray[np.float64]) -> None:
    """``histogram.observe`` of each of ``amounts``, counted per bucket by numpy: one call per record cost a host
    taking a run as a frame 6 % of its time (a lock and a bucket search per record). It adds to the buckets and sum
    ``observe`` adds to (prometheus_client's own attributes; tests/streams/test_metrics_bulk.py compares the two)."""
    if not len(amounts):
        return
    histogram._raise_if_not_observable()  # type: ignore[no-untyped-call]
    bounds = histogram._upper_bounds  # (ends with +Inf: every amount has a bucket)
    counts = np.bincount(np.searchsorted(bounds, amounts, side="left"), minlength=len(bounds))
    histogram._sum.inc(float(amounts.sum()))
    for bucket, count in zip(histogram._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)


def observe_output(event: Event, *, live: bool) -> None:
    """What an output event tells operators: order outcomes (counted live only) and positions (state, always)."""
    if isinstance(event, PositionChanged):
        labels = (event.account_id, event.instrument)
        POSITION_QUANTITY.labels(*labels).set(_number(event.quantity))
        REALIZED_PNL.labels(*labels).set(_number(event.realized_pnl))
        FEES_PAID.labels(*labels).set(_number(event.fees_paid))
        return
    outcome_of = _OUTCOMES.get(type(event)) if live else None
    outcome = outcome_of(event) if outcome_of is not None else None
    if outcome is not None:
        counter = _orders.get(outcome)
        if counter is None:
            counter = _orders[outcome] = ORDERS.labels(*outcome)
        counter.inc()


def _number(value: Decimal) -> float:
    # Prometheus samples are floats; the exact figures stay in the events and read models.
    return float(value)
