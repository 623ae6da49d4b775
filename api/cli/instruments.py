"""`tradecore instruments`: the instrument registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.exchange import BaseUrl, ExchangeOptions, exchange_settings
from api.cli.reporting import Commands, console, errors, foreign_errors

app = Commands(help="The instrument registry (TRADECORE_INSTRUMENTS_FILE).", no_args_is_help=True)


@app.command("import")
def instruments_import(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    symbols: Annotated[
        list[str] | None, typer.Option("--symbols", help="Markets to import (BTC/USDT or BTCUSDT); default all.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the TOML here (default: print it).")] = None,
    exchange_option: ExchangeOptions = None,
    base_url: BaseUrl = None,
) -> None:
    """Instruments from the exchange's markets (ccxt load_markets), in the registry's TOML format."""
    from streams.exchanges import connect, import_instruments, parse_options

    with foreign_errors(f"{exchange} markets could not be loaded"):  # the exchange did not answer, or refused
        client = connect(exchange, exchange_settings(base_url), parse_options(exchange_option or []))
        registry, skipped = import_instruments(client, symbols or [])
    for reason in skipped:
        errors.print(f"[yellow]skipped:[/] {reason}", highlight=False)
    if out is None:
        console.print(registry.to_toml(), highlight=False, markup=False)
        return
    out.write_text(registry.to_toml())
    console.print(f"{len(registry)} instruments written to {out} (use it: TRADECORE_INSTRUMENTS_FILE={out})")
