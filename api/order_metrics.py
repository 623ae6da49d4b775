"""Metrics of the group commits of placements (``commands.gateway.CommandGateway``): how many orders share each
commit's round trips, and how long one takes — what ``TRADECORE_PLACEMENTS_IN_FLIGHT`` is tuned by. (Apart from
``api.telemetry``, which needs FastAPI: every command that writes through ``api.wiring`` counts them.)"""

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


def order_committed(orders: int, seconds: float) -> None:
    """Count one group commit of ``orders`` placements that took ``seconds``."""
    ORDER_COMMITS.observe(orders)
    ORDER_COMMIT_LATENCY.observe(seconds)
