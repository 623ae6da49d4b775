"""`tradecore demo` (`make demo`): the whole loop in a namespace of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from api.cli.reporting import Commands, console, errors

app = Commands()


@app.command("demo")
def demo(
    once: Annotated[bool, typer.Option(help="Exit after the summary instead of serving the API until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option(help="Port of the demo's API (the next free one if taken).")] = 8000,
    data: Annotated[
        Path | None, typer.Option(help="Quotes to replay (default: the recorded BTCUSDT quotes in data/market).")
    ] = None,
    speed: Annotated[float, typer.Option(help="Pace of the quotes: 1 is as recorded, 2 twice as fast.")] = 1.0,
    source: Annotated[
        Literal["auto", "recorded", "live", "synthetic"],
        typer.Option(
            help="Quotes: auto or recorded (the recorded Binance BTCUSDT quotes of data/market, or of "
            "TRADECORE_MARKET_DATA), live (Binance tickers through ccxt) or synthetic (a seeded random walk)."
        ),
    ] = "auto",
    live_seconds: Annotated[
        float, typer.Option(help="With --source live: how long to follow the exchange's tickers, in seconds.", min=5)
    ] = 45.0,  # api.demo.LIVE_SECONDS: imported when the command runs
) -> None:
    """The whole loop in a namespace of its own: API, processors, projector, quotes, a scripted trader, a summary."""
    from api import demo as demos
    from deploy.local.process import port_in_use

    while port_in_use(port):
        port += 1
    result = demos.run(console, once=once, port=port, data=data, speed=speed, source=source, live_seconds=live_seconds)
    if not result.fills:
        errors.print("[yellow]warning:[/] nothing filled; see the logs under .stack/demo/")
