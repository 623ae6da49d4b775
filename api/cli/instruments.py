"""`tradecore instruments`: the instrument registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.exchange import BaseUrl, ExchangeOptions, exchange_settings
from api.cli.reporting import Commands, console, errors, fail
from schemas.errors import TradecoreError

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

    try:
        client = connect(exchange, exchange_settings(base_url), parse_options(exchange_option or []))
        registry, skipped = import_instruments(client, symbols or [])
    except TradecoreError:
        raise
    except Exception as err:  # ccxt: the exchange did not answer, or answered an error
        raise fail(f"{exchange} markets could not be loaded: {type(err).__name__}: {err}") from err
    for reason in skipped:
        errors.print(f"[yellow]skipped:[/] {reason}", highlight=False)
    if out is None:
        console.print(registry.to_toml(), highlight=False, markup=False)
        return
    out.write_text(registry.to_toml())
    console.print(f"{len(registry)} instruments written to {out} (use it: TRADECORE_INSTRUMENTS_FILE={out})")
