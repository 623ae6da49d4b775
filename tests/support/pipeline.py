"""A whole pipeline's log in a namespace of its own: a session of real quotes and orders, risk limits and a kill
switch, run through the real processors (`tradecore worker`), so every topic a projection reads holds events."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from commands import decide
from commands.models import SetRiskLimits, ToggleKillSwitch
from deploy.local.stack import Endpoints
from schemas.events import Event, OrderPlaced
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.kafka.logreader import LogReader
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.support.workers import start_worker, stop

LIMITS = SetRiskLimits(
    max_order_quantity=Decimal("10"),
    max_order_notional=Decimal("500000"),
    max_position_quantity=Decimal("0.5"),
    max_open_notional=Decimal("2000000"),
    daily_loss_limit=Decimal("50000"),
    max_orders_per_second=1000,
    price_collar_bps=500,
    reference_max_age_ms=600000,
)


def with_limits(log: list[Event]) -> list[Event]:
    """``log`` with risk limits set for every account before its first order, and one account's kill switch engaged
    half-way through."""
    accounts = sorted({e.account_id for e in log if isinstance(e, OrderPlaced)})
    start = log[0].envelope.occurred_at - timedelta(seconds=1)
    stamp = decide.Stamp(start, "limits")
    limits: list[Event] = [decide.set_risk_limits(LIMITS, a, "rita", 1, stamp) for a in accounts]
    middle = log[len(log) // 2].envelope.occurred_at
    kill = decide.toggle_kill_switch(
        ToggleKillSwitch(account_id=accounts[0], engaged=True, reason="test halt"),
        "rita",
        2,  # the account's second event (its limits were the first)
        decide.Stamp(middle, "kill"),
    )
    half = len(log) // 2
    return limits + log[:half] + [kill] + log[half:]


def produce(settings: KafkaSettings, registry: RegistrySettings, log: list[Event]) -> None:
    client = registry_client(registry)
    register_all(client, settings.topic_prefix)
    serializers: dict[str, EventSerializer] = {}
    producer = kafka.producer(settings)
    for event in log:
        route = event.route().topic
        ser = serializers.setdefault(route, EventSerializer(client, route, topic_prefix=settings.topic_prefix))
        producer.produce(ser.topic, key=ser.key(event), value=ser.serialize(event), timestamp=event_time_ms(event))
        producer.poll(0)
    assert producer.flush(60) == 0


def topic_ends(settings: KafkaSettings, topics: list[str]) -> dict[tuple[str, int], int]:
    reader = LogReader(settings, "ends")
    try:
        return reader.ends(reader.partitions(settings.topic_prefix + t for t in topics))
    finally:
        reader.close()


PROCESSED = ["orders.checked", "executions", "positions", "signals"]


def run_pipeline(endpoints: Endpoints, settings: KafkaSettings, registry: RegistrySettings, log_dir: Path) -> None:
    """Run every processor over what is in the namespace until their outputs stop growing."""
    worker = start_worker(endpoints, settings.topic_prefix, [], log_dir / "worker.log")
    try:
        last, same = None, 0
        deadline = time.monotonic() + 600
        while same < 4:
            assert worker.poll() is None, (log_dir / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the processors did not settle"
            time.sleep(2)
            now = topic_ends(settings, PROCESSED)
            same = same + 1 if now == last and sum(now.values()) > 0 else 0
            last = now
    finally:
        stop(worker, log_dir / "worker.log")


def start_projector(endpoints: Endpoints, prefix: str, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    full = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix, **env}
    with log.open("ab") as out:
        return subprocess.Popen([tradecore, "project", *args], env=full, stdout=out, stderr=subprocess.STDOUT)


def tradecore(endpoints: Endpoints, prefix: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = str(Path(sys.executable).with_name("tradecore"))
    full = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix, "COLUMNS": "200", **env}
    return subprocess.run([command, *args], env=full, capture_output=True, text=True, timeout=600)
