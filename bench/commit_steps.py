"""The API's group commits of placements over one attack, step by step: what its ``/metrics`` histogram
``tradecore_order_commit_step_duration_seconds`` (``api.order_metrics``) moved by — which of Postgres (``claim``,
``record``) and Kafka (``append``) the slow commits, and so an order's tail, waited on.

A histogram gives buckets, not samples: a quantile is reported as the bound of the bucket it falls in (≤ 2.5 ms).
"""

from __future__ import annotations

import math
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

STEPS = ("claim", "append", "record")
_BUCKET = "tradecore_order_commit_step_duration_seconds_bucket"
SLOW_S = 0.010  # a bucket bound of the histogram (streams.metrics.LATENCY_BUCKETS)

Buckets = dict[str, dict[float, float]]  # step -> bucket bound (s) -> commits at most that long, cumulative


def scrape(api_url: str) -> Buckets:
    """The histogram's buckets now (every worker's: the API sums them, ``api.telemetry.shared_across``)."""
    text = httpx.get(f"{api_url}/metrics", timeout=10).text
    found: Buckets = {step: {} for step in STEPS}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == _BUCKET and sample.labels.get("step") in found:
                found[sample.labels["step"]][float(sample.labels["le"])] = sample.value
    return found


def moved(before: Buckets, after: Buckets) -> dict[str, dict[str, Any]]:
    """Per step, the commits between the scrapes: how many, the bucket bounds of their p50 and p99 (ms; None past
    the last finite bound), and the share that took longer than ``SLOW_S``."""
    out: dict[str, dict[str, Any]] = {}
    for step in STEPS:
        counts = sorted((le, after[step].get(le, 0.0) - before[step].get(le, 0.0)) for le in after[step])
        total = counts[-1][1] if counts else 0.0
        out[step] = {
            "commits": int(total),
            "p50_le_ms": _quantile(counts, total, 0.50),
            "p99_le_ms": _quantile(counts, total, 0.99),
            "slow_share": (total - dict(counts).get(SLOW_S, total)) / total if total else 0.0,
        }
    return out


def _quantile(counts: list[tuple[float, float]], total: float, q: float) -> float | None:
    for le, seen in counts:
        if total and seen >= q * total:
            return None if math.isinf(le) else le * 1e3
    return None


def describe(steps: dict[str, dict[str, Any]]) -> str:
    """One line: each step's p50 and p99 bounds and its share over ``SLOW_S``."""

    def bound(ms: float | None) -> str:
        return "?" if ms is None else f"≤{ms:g}"

    return "; ".join(
        f"{step} p50 {bound(s['p50_le_ms'])} p99 {bound(s['p99_le_ms'])} ms, "
        f"{s['slow_share']:.1%} over {SLOW_S * 1e3:g} ms"
        for step, s in steps.items()
    )
