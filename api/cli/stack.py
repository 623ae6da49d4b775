"""`tradecore stack`: the local stack, without Docker."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from api.cli.reporting import Commands, console

app = Commands(help="The local stack: Kafka (KRaft), Postgres and the schema registry, without Docker.")


@app.command("up")
def stack_up(
    brokers: Annotated[int, typer.Option(help="Kafka nodes: 1, or 3 for a replicated KRaft cluster.")] = 1,
) -> None:
    """Start whatever is not running, wait until each component answers, write the endpoints to .stack/env."""
    from deploy.local.stack import LocalStack

    stack = LocalStack()
    endpoints = stack.up(brokers=brokers, report=lambda line: console.print(line, highlight=False))
    console.print(f"\nendpoints written to [bold]{stack.env_file}[/] (read by every tradecore command):")
    for key, value in endpoints.as_env().items():
        console.print(f"  {key}={value}", highlight=False)


@app.command("down")
def stack_down(
    purge: Annotated[
        bool, typer.Option(help="Also delete the stack's data (Kafka log, Postgres); keeps the jars.")
    ] = False,
) -> None:
    """Stop the processes `stack up` started, and nothing else."""
    from deploy.local.stack import LocalStack

    LocalStack().down(purge=purge, report=lambda line: console.print(line, highlight=False))


@app.command("status")
def stack_status() -> None:
    """Each component's health; exits 1 when any is not answering."""
    from deploy.local.stack import LocalStack

    rows = LocalStack().status()
    table = Table("component", "state", "endpoint", "pid")
    table.columns[2].overflow = "fold"
    colours = {"running": "green", "external": "cyan", "stopped": "yellow"}
    for row in rows:
        table.add_row(row.name, f"[{colours.get(row.state, 'red')}]{row.state}[/]", row.endpoint, str(row.pid or ""))
    console.print(table)
    if not all(row.ok for row in rows):
        raise typer.Exit(1)
