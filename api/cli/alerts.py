"""`tradecore alerts`: webhooks for fills, risk rejections, the kill switch, dead letters and projection lag."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli.reporting import Commands, console

if TYPE_CHECKING:
    from projections.settings import DatabaseSettings
    from streams.alerts.service import LagProbe
    from streams.settings import KafkaSettings

app = Commands()


class Start(StrEnum):
    LATEST = "latest"
    EARLIEST = "earliest"


@app.command("alerts")
def alerts(
    rules: Annotated[Path, typer.Option(help="The rules file (TOML): which events alert which URL, how often.")],
    group: Annotated[
        str | None, typer.Option(help="Consumer group holding the delivery position (default: <namespace>alerts).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (TRADECORE_METRICS_PORT; default 9390; 0: off).", min=0),
    ] = None,
    start: Annotated[
        Start,
        typer.Option(help="Where a group with no position yet begins: latest (from now on) or earliest (history)."),
    ] = Start.LATEST,
) -> None:
    """Send a signed webhook for each event the rules name, until SIGTERM/SIGINT; the secret comes from
    TRADECORE_ALERTS_SECRET. A position is committed only once its alerts were taken (2xx) or dead-lettered."""
    import logging
    import signal
    import threading

    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams import metrics
    from streams.alerts import rules as rules_file
    from streams.alerts.delivery import WebhookSender
    from streams.alerts.metrics import ALERTS_METRICS_PORT
    from streams.alerts.service import AlertService
    from streams.alerts.settings import AlertsSettings
    from streams.kafka.registry import registry_client
    from streams.settings import KafkaSettings, MetricsSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every request's URL, which may hold a token
    parsed = rules_file.load(rules)
    secret = AlertsSettings().secret()
    settings = KafkaSettings()
    observed = MetricsSettings() if metrics_port is None else MetricsSettings(metrics_port=metrics_port)
    served = metrics.expose(observed.metrics_host, observed.metrics_port, default=ALERTS_METRICS_PORT)
    if served:
        console.print(f"metrics on http://{observed.metrics_host}:{served}/metrics", highlight=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    probe = lag_probe(settings, DatabaseSettings()) if "projection_lag" in parsed.kinds() else None
    sender = WebhookSender(secret, parsed.delivery, stop)
    service = AlertService(
        settings,
        registry_client(RegistrySettings()),
        parsed,
        sender,
        group=group or f"{settings.topic_prefix}alerts",
        start="earliest" if start is Start.EARLIEST else "latest",
        lag_probe=probe,
    )
    names = ", ".join(rule.name for rule in parsed.rules)
    console.print(f"alerting by {len(parsed.rules)} rules ({names}) from {rules}", highlight=False)
    try:
        service.run(stop)
    finally:
        service.close()
        sender.close()
    console.print("stopped; every alert handled is committed")


def lag_probe(settings: KafkaSettings, database: DatabaseSettings) -> LagProbe:
    """How far each read model of the namespace trails the log: its Postgres checkpoints against the topics' ends.

    Composed here, not in streams/alerts: the stream side may not read the read models' tables."""
    import psycopg

    from projections import namespace
    from projections.db import conninfo
    from projections.projectors import select
    from projections.runner import checkpoints, ends_of, lag

    projectors = select(None)
    schema = namespace.live_schema(settings.topic_prefix)
    address = conninfo(database)
    topics = sorted({topic for p in projectors for topic in p.topics})

    def probe() -> dict[str, int]:
        with psycopg.connect(address) as conn:
            committed = checkpoints(conn, schema)
        return lag(committed, ends_of(settings, topics), projectors)

    return probe
