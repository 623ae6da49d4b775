"""A run of records observed at once moves the latency histogram exactly as observing each record does: the same
count in every bucket and the same sum (what an operator's quantiles are computed from)."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from streams.metrics import observe_all

BUCKETS = (0.001, 0.01, 0.1, 1.0, 10.0)


def samples(histogram: Histogram, registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {
        (sample.name, sample.labels.get("le", "")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    }


def test_observing_a_run_at_once_equals_observing_each_record() -> None:
    amounts = np.array([0.0, 0.001, 0.0010001, 0.5, 1.0, 3.0, 10.0, 99.0, 0.02, 0.001])  # on and around the bounds
    one, bulk = CollectorRegistry(), CollectorRegistry()
    each = Histogram("lag", "lag", ["topic"], buckets=BUCKETS, registry=one).labels("ticks")
    at_once = Histogram("lag", "lag", ["topic"], buckets=BUCKETS, registry=bulk).labels("ticks")

    for amount in amounts:
        each.observe(float(amount))
    observe_all(at_once, amounts)
    observe_all(at_once, np.array([], dtype=np.float64))

    expected, found = samples(each, one), samples(at_once, bulk)
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert found[key] == pytest.approx(value, rel=1e-12), key
    assert found[("lag_bucket", "0.001")] == 3  # an amount on a bound is counted in that bound's bucket
    assert found[("lag_count", "")] == len(amounts)
