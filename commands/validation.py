"""Stateless validation of commands against the instrument registry: every broken rule is reported at once,
each naming the field and the rule."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from commands.errors import CommandRejected, Violation
from commands.models import AmendOrder, IngestTicks, PlaceOrder
from commands.refs import OrderRef
from domain.instruments import Instrument
from schemas.events import OrderType, TimeInForce


def _instrument(
    symbol: str, registry: Mapping[str, Instrument], field: str, found: list[Violation]
) -> Instrument | None:
    instrument = registry.get(symbol)
    if instrument is None:
        found.append(Violation(field, "instrument.known", f"unknown instrument {symbol!r}"))
    elif not instrument.tradable:
        found.append(Violation(field, "instrument.tradable", f"{symbol} is not tradable now"))
        return None
    return instrument


def _quantity(instrument: Instrument, quantity: Decimal, field: str, found: list[Violation]) -> None:
    if not instrument.on_lot(quantity):
        found.append(
            Violation(field, "quantity.lot_size", f"{quantity} is not a multiple of the lot size {instrument.lot_size}")
        )
    if quantity < instrument.min_quantity:
        found.append(Violation(field, "quantity.min", f"{quantity} is below the minimum {instrument.min_quantity}"))
    if quantity > instrument.max_quantity:
        found.append(Violation(field, "quantity.max", f"{quantity} is above the maximum {instrument.max_quantity}"))


def _price(instrument: Instrument, price: Decimal, field: str, found: list[Violation]) -> None:
    if not instrument.on_tick(price):
        found.append(
            Violation(field, "price.tick_size", f"{price} is not a multiple of the tick size {instrument.tick_size}")
        )


def _raise_if(found: list[Violation]) -> None:
    if found:
        raise CommandRejected(found)


def validate_place(command: PlaceOrder, registry: Mapping[str, Instrument]) -> Instrument:
    """The instrument the order trades, or CommandRejected listing every broken rule."""
    found: list[Violation] = []
    instrument = _instrument(command.instrument, registry, "instrument", found)
    if command.order_type is OrderType.LIMIT and command.limit_price is None:
        found.append(Violation("limit_price", "limit_price.required", "a LIMIT order needs a limit_price"))
    if command.order_type is OrderType.MARKET:
        if command.limit_price is not None:
            found.append(Violation("limit_price", "limit_price.forbidden", "a MARKET order takes no limit_price"))
        if command.time_in_force is TimeInForce.GTC:
            found.append(
                Violation("time_in_force", "time_in_force.market", "a MARKET order cannot rest: use IOC or FOK")
            )
    if instrument is not None:
        _quantity(instrument, command.quantity, "quantity", found)
        if command.limit_price is not None:
            _price(instrument, command.limit_price, "limit_price", found)
    _raise_if(found)
    assert instrument is not None
    return instrument


def validate_amend(command: AmendOrder, order: OrderRef, registry: Mapping[str, Instrument]) -> None:
    found: list[Violation] = []
    instrument = _instrument(order.instrument, registry, "instrument", found)
    if command.new_limit_price is not None and order.order_type is OrderType.MARKET:
        found.append(
            Violation("new_limit_price", "limit_price.forbidden", "a MARKET order has no limit price to amend")
        )
    if instrument is not None:
        if command.new_quantity is not None:
            _quantity(instrument, command.new_quantity, "new_quantity", found)
        if command.new_limit_price is not None:
            _price(instrument, command.new_limit_price, "new_limit_price", found)
    _raise_if(found)


def validate_ticks(command: IngestTicks, registry: Mapping[str, Instrument]) -> None:
    found: list[Violation] = []
    for i, tick in enumerate(command.ticks):
        at = f"ticks[{i}]"
        instrument = _instrument(tick.instrument, registry, f"{at}.instrument", found)
        if tick.bid is None and tick.ask is None and tick.last is None:
            found.append(Violation(at, "tick.empty", "a tick needs a bid, an ask or a last price"))
        if tick.bid is not None and tick.ask is not None and tick.bid > tick.ask:
            found.append(Violation(f"{at}.bid", "tick.crossed", f"bid {tick.bid} is above ask {tick.ask}"))
        if tick.exchange_ts.tzinfo is None:
            found.append(
                Violation(f"{at}.exchange_ts", "tick.timezone", "give a UTC offset, e.g. 2021-01-08T00:00:01Z")
            )
        if instrument is not None:
            for name in ("bid", "ask", "last"):
                price = getattr(tick, name)
                if price is not None:
                    _price(instrument, price, f"{at}.{name}", found)
    _raise_if(found)
