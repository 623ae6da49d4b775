"""Prometheus metrics of `tradecore alerts`, in prometheus-client's default registry (served as the workers' are)."""

from prometheus_client import Counter

ALERTS_METRICS_PORT = 9390  # `tradecore alerts`' default /metrics port (projector 9300, workers 9400 + instance)

SENT = Counter("tradecore_alerts_sent", "Alerts a receiver took (answered 2xx), per rule.", ["rule"])
RETRIED = Counter("tradecore_alerts_retried", "Tries of an alert that failed and were tried again, per rule.", ["rule"])
FAILED = Counter(
    "tradecore_alerts_failed",
    "Alerts that failed every try (or were refused) and were dead-lettered, per rule.",
    ["rule"],
)
SUPPRESSED = Counter(
    "tradecore_alerts_suppressed", "Alerts not sent because their rule alerted within its min_interval_s.", ["rule"]
)
