"""The `tradecore` command: the composition root for operators, one module per command group.

Each module's commands report a tradecore error the same way (`api.cli.reporting`); heavy imports stay inside the
commands, so `tradecore --help` answers at once."""

from __future__ import annotations

import typer

from api.cli import (
    alerts,
    backtest,
    db,
    demo,
    ingest,
    instruments,
    live_venue,
    readmodels,
    replay,
    server,
    stack,
    topics,
    train,
    users,
    worker,
)
from streams.runtime import tune_collector

app = typer.Typer(help="tradecore: an event-sourced trading core on Kafka.", no_args_is_help=True)


@app.callback()
def _process() -> None:
    """Before any command: the process set-up every tradecore process shares."""
    tune_collector()


app.add_typer(stack.app, name="stack")
app.add_typer(topics.app, name="topics")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(ingest.app, name="ingest")
app.add_typer(instruments.app, name="instruments")
# Commands of their own at the top level: `tradecore api`, `tradecore worker`, …
for single in (server, worker, readmodels, replay, backtest, train, live_venue, alerts, demo):
    app.add_typer(single.app)
