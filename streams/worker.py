"""`tradecore worker [NAME...]`: host processors, one thread each, until SIGTERM/SIGINT; then commit and stop."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence

from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams import tracing
from streams.errors import StreamsError
from streams.host.config import CheckpointSettings
from streams.host.processor import Processor
from streams.host.pulse import Pulse
from streams.host.runner import HostConfig, ProcessorHost
from streams.kafka import KafkaSettings
from streams.kafka.registry import registry_client
from streams.metrics import expose
from streams.processors import (
    ExecutionProcessor,
    PositionsProcessor,
    ProcessorSettings,
    RiskProcessor,
    SignalsProcessor,
    StrategyProcessor,
)
from streams.repartition import ExecutionsByAccount
from streams.settings import MetricsSettings

log = logging.getLogger("tradecore.streams")

# Worker --instance N serves /metrics on 9400 + N by default, so the slots of one host do not collide.
METRICS_PORT_BASE = 9400


class ProcessorFailed(StreamsError):
    """A hosted processor stopped on an error it could not handle."""


PROCESSORS: dict[str, Callable[[ProcessorSettings], Processor]] = {
    "risk": RiskProcessor,
    "execution": ExecutionProcessor,
    "executions-by-account": lambda _settings: ExecutionsByAccount(),
    "positions": PositionsProcessor,
    "signals": SignalsProcessor,
    "strategy": StrategyProcessor,
}


def run(
    names: Sequence[str],
    settings: KafkaSettings,
    registry: RegistrySettings,
    config: HostConfig,
    report: Callable[[str], None],
    report_every_s: float = 10.0,
    metrics: MetricsSettings | None = None,
) -> None:
    unknown = [n for n in names if n not in PROCESSORS]
    if unknown:
        raise KeyError(f"unknown processor(s) {', '.join(unknown)}; known: {', '.join(PROCESSORS)}")
    if tracing.configure("worker"):
        report("traces exported as the OTEL_* variables say")
    metrics = metrics or MetricsSettings()
    default_port = METRICS_PORT_BASE + (int(config.instance) if config.instance.isdigit() else 0)
    served = expose(metrics.metrics_host, metrics.metrics_port, default_port)
    if served is not None:
        report(f"metrics on http://{metrics.metrics_host}:{served}/metrics")
    client = registry_client(registry)
    register_all(client, config.output_prefix if config.output_prefix is not None else settings.topic_prefix)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    processor_settings = ProcessorSettings()
    config = CheckpointSettings().apply(config)
    hosts = [ProcessorHost(PROCESSORS[n](processor_settings), settings, client, config) for n in names or PROCESSORS]
    failed: list[str] = []

    def host(h: ProcessorHost) -> None:
        try:
            h.run(stop)
        except Exception:
            # A processor that cannot go on takes the worker down with it, so that its supervisor restarts it.
            log.exception("%s failed; stopping the worker", h.processor.name)
            failed.append(h.processor.name)
            stop.set()

    threads = [threading.Thread(target=host, args=(h,), name=h.processor.name) for h in hosts]
    for thread in threads:
        thread.start()
    pulse = Pulse()
    while any(t.is_alive() for t in threads):
        stop.wait(report_every_s)
        for h, thread in zip(hosts, threads, strict=True):
            s = h.stats
            pulse.check(h.processor.name, s, thread)
            report(
                f"{h.processor.name}: consumed {s.consumed}, produced {s.produced}, dead-lettered {s.dead_lettered}, "
                f"commits {s.commits}, restarts {s.restarts}"
            )
        if stop.is_set():
            break
    for thread in threads:
        thread.join()
    if failed:
        raise ProcessorFailed(f"processor(s) failed: {', '.join(failed)}; see the log above")
