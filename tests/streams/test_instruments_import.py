"""`tradecore instruments import`: the registry's TOML from an exchange's markets (ccxt load_markets)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from domain.errors import MarketNotUsable
from domain.instruments import DECIMAL_PLACES, InstrumentRegistry, from_market
from tests.support.fake_exchange import cli_options, serve


def test_import_from_exchange_info_gives_binance_filters(tmp_path: Path) -> None:
    out = tmp_path / "instruments.toml"
    symbols = ["--symbols", "BTC/USDT", "--symbols", "ETHBTC"]
    with serve() as (exchange, url):
        # In process: the `tradecore` command's own code, without paying for a Python start and ccxt's import.
        done = CliRunner().invoke(
            app, ["instruments", "import", "binance", *symbols, *cli_options(url), "--out", str(out)]
        )
        paths = [path for _, path, _ in exchange.requests]
    assert done.exit_code == 0, done.output
    assert paths == ["/api/v3/exchangeInfo"], "markets only: no futures, margin or currency endpoints"
    registry = InstrumentRegistry.from_file(out)  # the very format the API and risk read
    btc, eth = registry["BTCUSDT"], registry["ETHBTC"]
    assert (btc.venue, btc.base, btc.quote) == ("BINANCE", "BTC", "USDT")
    assert (btc.tick_size, btc.lot_size) == (Decimal("0.01"), Decimal("0.00001"))  # PRICE_FILTER, LOT_SIZE
    assert (btc.min_quantity, btc.max_quantity) == (Decimal("0.00001"), Decimal("9000"))
    assert (eth.tick_size, eth.lot_size, eth.max_quantity) == (Decimal("0.00001"), Decimal("0.0001"), Decimal(100000))
    assert btc.tradable and btc.on_tick(Decimal("39433.62")) and not btc.on_lot(Decimal("0.000001"))
    assert 'max_quantity = "9000"' in out.read_text()


def test_unknown_symbol_is_named() -> None:
    with serve() as (_exchange, url):
        done = CliRunner().invoke(app, ["instruments", "import", "binance", "--symbols", "DOGE/EUR", *cli_options(url)])
    assert done.exit_code == 1
    assert "binance has no market DOGE/EUR" in done.stderr


def test_decimal_places_precision_and_missing_bounds() -> None:
    market = {
        "id": "XBTUSD",
        "symbol": "BTC/USD",
        "base": "BTC",
        "quote": "USD",
        "active": False,
        "precision": {"price": 1, "amount": 4},
        "limits": {"amount": {"min": None, "max": 250.0}},
    }
    instrument = from_market(market, "kraken", DECIMAL_PLACES)
    assert (instrument.tick_size, instrument.lot_size) == (Decimal("0.1"), Decimal("0.0001"))
    assert (instrument.min_quantity, instrument.max_quantity, instrument.tradable) == (
        Decimal("0.0001"),
        Decimal(250),
        False,
    )
    with pytest.raises(MarketNotUsable, match="BTC/USD has no max amount"):
        from_market({**market, "limits": {}}, "kraken", DECIMAL_PLACES)
