"""Where the recorded market data is: the files shipped under ``data/market`` (see its README), or elsewhere."""

from pathlib import Path

from pydantic import Field

from schemas.settings import TradecoreSettings
from streams.errors import MarketDataMissing

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "market"
BINANCE_QUOTES = "binance-btcusdt-quotes-2021-01-08.parquet"
BINANCE_TRADES = "binance-btcusdt-trades-2021-01-08.parquet"


class MarketDataSettings(TradecoreSettings):
    """The folder the demo, the benchmarks and the tests read recorded quotes, trades and bars from."""

    market_data: Path = Field(
        SHIPPED, description="Folder of recorded market data files (TRADECORE_MARKET_DATA); default: data/market."
    )


def market_file(name: str) -> Path:
    """The recorded file ``name`` in the market-data folder; a missing one is a named error, not an empty feed."""
    folder = MarketDataSettings().market_data
    path = folder / name
    if not path.is_file():
        raise MarketDataMissing(
            f"the recorded market data file {path} is missing",
            hint=f"put it in {folder}, or unset TRADECORE_MARKET_DATA to read the files shipped in {SHIPPED}",
        )
    return path
