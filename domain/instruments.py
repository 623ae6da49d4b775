"""The instrument registry: what may be traded, and the venue's rules for prices and quantities."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from domain.errors import InstrumentsFileError, MarketNotUsable

DEFAULT_FILE = Path(__file__).with_name("instruments.toml")
_DECIMALS = ("tick_size", "lot_size", "min_quantity", "max_quantity")
# ccxt's precision modes: precision given as a number of decimal places, or as the increment itself.
DECIMAL_PLACES, TICK_SIZE = 2, 4


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

    def to_toml(self) -> str:
        """The registry in the file format ``from_file`` reads (decimals as strings, exact)."""
        lines = ["# Written by `tradecore instruments import`; the format of domain/instruments.toml.", ""]
        for i in self.values():
            lines += ["[[instrument]]", f'symbol = "{i.symbol}"', f'venue = "{i.venue}"']
            lines += [f'base = "{i.base}"', f'quote = "{i.quote}"']
            lines += [f'{key} = "{getattr(i, key)}"' for key in _DECIMALS]
            lines += [f"tradable = {str(i.tradable).lower()}", ""]
        return "\n".join(lines)


def from_market(market: Mapping[str, Any], venue: str, precision_mode: int = TICK_SIZE) -> Instrument:
    """The instrument of one ccxt market structure (``exchange.markets[symbol]``), under the venue's own symbol.

    Tick and lot size come from ``precision`` (increments, or decimal places under ``DECIMAL_PLACES``); min/max
    quantity from ``limits.amount`` (min defaults to the lot size). Raises ``MarketNotUsable`` when the market
    lacks what an instrument needs.
    """
    name = market.get("symbol", "?")
    precision = market.get("precision") or {}
    amount = (market.get("limits") or {}).get("amount") or {}
    tick, lot = _increment(precision.get("price"), precision_mode), _increment(precision.get("amount"), precision_mode)
    maximum = amount.get("max")
    missing = [
        what
        for what, value in (("price precision", tick), ("amount precision", lot), ("max amount", maximum))
        if value is None
    ]
    if missing:
        raise MarketNotUsable(f"market {name} has no {', '.join(missing)}")
    assert tick is not None and lot is not None
    minimum = amount.get("min")
    return Instrument(
        symbol=str(market["id"]),
        venue=venue.upper(),
        base=str(market["base"]),
        quote=str(market["quote"]),
        tick_size=tick,
        lot_size=lot,
        min_quantity=lot if minimum is None or Decimal(str(minimum)) == 0 else _plain(minimum),
        max_quantity=_plain(maximum),
        tradable=market.get("active") is not False,
    )


def _increment(value: Any, precision_mode: int) -> Decimal | None:
    if value is None:
        return None
    if precision_mode == DECIMAL_PLACES:
        return _plain(Decimal(1).scaleb(-int(value)))
    if precision_mode != TICK_SIZE:
        raise MarketNotUsable(f"precision mode {precision_mode} (significant digits) has no fixed increment")
    return _plain(value)


def _plain(value: Any) -> Decimal:
    """``"0.01000000"`` -> ``0.01``, ``"9000.00000000"`` -> ``9000`` (no trailing zeros, no exponent)."""
    number = Decimal(str(value)).normalize()
    return number.quantize(Decimal(1)) if number.as_tuple().exponent > 0 else number  # type: ignore[operator]


def _instrument(table: Mapping[str, Any]) -> Instrument:
    symbol = table.get("symbol", "?")
    try:
        decimals = {key: Decimal(str(table[key])) for key in _DECIMALS}
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
