"""Prometheus metrics of the projector, in prometheus-client's default registry (served by `tradecore project`)."""

from prometheus_client import Counter, Gauge

# Per projection: event time of the last projected record -> now, and rows written.
PROJECTION_LAG = Gauge(
    "tradecore_projection_lag_seconds",
    "How far a projection's read model trails the log, in event time.",
    ["projection"],
)
PROJECTION_ROWS = Counter("tradecore_projection_rows", "Rows a projection wrote to its read model.", ["projection"])
