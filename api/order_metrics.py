"""Metrics of the group commits of placements (``commands.gateway.CommandGateway``): how many orders share each
commit's round trips, how long one takes — what ``TRADECORE_PLACEMENTS_IN_FLIGHT`` is tuned by — and each of its
steps, which say whether a slow commit waited on Postgres or on Kafka. (Apart from ``api.telemetry``, which needs
FastAPI: every command that writes through ``api.wiring`` counts them.)"""

from __future__ import annotations

from prometheus_client import Histogram

from streams.metrics import LATENCY_BUCKETS

ORDER_COMMITS = Histogram(
    "tradecore_order_commit_orders",
    "Orders per group commit of placements (claim, append, record).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 500),
)
ORDER_COMMIT_LATENCY = Histogram(
    "tradecore_order_commit_duration_seconds",
    "Time a group commit of placements took, from its claim to its record: what an order arriving during one waits "
    "before its own starts.",
    buckets=LATENCY_BUCKETS,
)
ORDER_COMMIT_STEPS = Histogram(
    "tradecore_order_commit_step_duration_seconds",
    "Time each step of a group commit of placements took: claim (Postgres), append (Kafka, to its acknowledgement) "
    "and record (Postgres, where the orders landed); a failed step too, until it failed.",
    ["step"],
    buckets=LATENCY_BUCKETS,
)
# One series per step, made once: every step of every commit observes one, and ``labels`` looks its child up by
# building and hashing the label tuple under the metric's lock; made here, each series is also scraped (at 0) before
# its first commit.
_STEPS = {step: ORDER_COMMIT_STEPS.labels(step) for step in ("claim", "append", "record")}


def order_committed(orders: int, seconds: float) -> None:
    """Count one group commit of ``orders`` placements that took ``seconds``."""
    ORDER_COMMITS.observe(orders)
    ORDER_COMMIT_LATENCY.observe(seconds)


def order_commit_step(step: str, seconds: float) -> None:
    """Time one step (``claim``, ``append`` or ``record``) of a group commit of placements."""
    _STEPS[step].observe(seconds)
