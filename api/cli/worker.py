"""`tradecore worker`: the stream processors."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.reporting import Commands, console, fail

app = Commands()


@app.command("worker")
def worker(
    names: Annotated[list[str] | None, typer.Argument(help="Processors to run (default: all).")] = None,
    instance: Annotated[
        str,
        typer.Option(
            help="Stable slot id, one per running instance: the transactional id and group membership derive from "
            "it. Several instances: one process each, --instance 0, 1, ... (docs/DEPLOY.md)."
        ),
    ] = "0",
    input_prefix: Annotated[
        str | None, typer.Option(help="Namespace to read from (default TRADECORE_TOPIC_PREFIX): replays, audits.")
    ] = None,
    output_prefix: Annotated[
        str | None, typer.Option(help="Namespace to write to, and of the consumer group (default as above).")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Port of /metrics (TRADECORE_METRICS_PORT; default 9400 + instance; 0: off).", min=0),
    ] = None,
    batch_ms: Annotated[
        int | None,
        typer.Option(
            min=1,
            envvar="TRADECORE_BATCH_MS",
            help="Longest a transaction stays open while a backlog keeps coming, ms (default 100): outputs become "
            "visible to read_committed consumers up to this much later; shorter means more commits.",
        ),
    ] = None,
) -> None:
    """Run stream processors exactly once over Kafka until SIGTERM/SIGINT."""
    import dataclasses
    import logging

    from schemas.settings import RegistrySettings
    from streams import worker as workers
    from streams.host.runner import HostConfig
    from streams.settings import KafkaSettings, MetricsSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = HostConfig(instance=instance, input_prefix=input_prefix, output_prefix=output_prefix)
    if batch_ms is not None:
        config = dataclasses.replace(config, batch_ms=batch_ms)
    metrics = MetricsSettings() if metrics_port is None else MetricsSettings(metrics_port=metrics_port)
    try:
        workers.run(names or [], KafkaSettings(), RegistrySettings(), config, console.print, metrics=metrics)
    except KeyError as err:
        raise fail(err.args[0], code=2) from err
