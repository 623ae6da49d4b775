"""The instrument registry: what may be traded, and the venue's rules for prices and quantities."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from commands.errors import InstrumentsFileError

DEFAULT_FILE = Path(__file__).with_name("instruments.toml")


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable instrument: symbol, venue, currencies, and its price/quantity increments and bounds."""

    symbol: str
    venue: str
    base: str
    quote: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    tradable: bool = True

    def on_tick(self, price: Decimal) -> bool:
        return price % self.tick_size == 0

    def on_lot(self, quantity: Decimal) -> bool:
        return quantity % self.lot_size == 0


class InstrumentRegistry(Mapping[str, Instrument]):
    """Instruments by symbol."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol = {i.symbol: i for i in instruments}

    def __getitem__(self, symbol: str) -> Instrument:
        return self._by_symbol[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_symbol)

    def __len__(self) -> int:
        return len(self._by_symbol)

    @classmethod
    def from_file(cls, path: Path = DEFAULT_FILE) -> InstrumentRegistry:
        """Load ``[[instrument]]`` tables from a TOML file; decimals are given as strings to stay exact."""
        try:
            tables = tomllib.loads(path.read_text()).get("instrument", [])
            return cls(_instrument(table) for table in tables)
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise InstrumentsFileError(f"cannot read instruments from {path}: {err}") from err


def _instrument(table: Mapping[str, Any]) -> Instrument:
    symbol = table.get("symbol", "?")
    try:
        decimals = {key: Decimal(str(table[key])) for key in ("tick_size", "lot_size", "min_quantity", "max_quantity")}
        return Instrument(
            symbol=table["symbol"],
            venue=table["venue"],
            base=table["base"],
            quote=table["quote"],
            tradable=bool(table.get("tradable", True)),
            **decimals,
        )
    except KeyError as err:
        raise InstrumentsFileError(f"instrument {symbol} lacks {err.args[0]}") from err
    except InvalidOperation as err:
        raise InstrumentsFileError(f"instrument {symbol} has a value that is not a decimal") from err
