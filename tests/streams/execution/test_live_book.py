"""``LiveBook``: the exchange's order and trade reports (ccxt's unified structures) as execution events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.instruments import InstrumentRegistry
from schemas.events import OrderCancelled, OrderExpired, OrderFilled, OrderType, TimeInForce
from streams.execution.live import LiveBook, order_request
from tests.support import events as examples

INSTRUMENTS = InstrumentRegistry.from_file()


def trade(trade_id: str, price: str, amount: str, fee: str, currency: str, maker: bool, at: int) -> dict[str, Any]:
    return {
        "id": trade_id,
        "timestamp": at,
        "price": price,
        "amount": amount,
        "takerOrMaker": "maker" if maker else "taker",
        "fee": {"cost": fee, "currency": currency},
    }


def test_a_partial_fill_then_a_cancel_each_once_however_often_reported() -> None:
    book = LiveBook("binance", INSTRUMENTS)
    order = book.accept(examples.order_accepted(quantity=Decimal("0.5"), limit_price=Decimal("39445.00")))
    assert order is not None
    first = trade("901", "39445.00000000", "0.20000000", "7.89000000", "USDT", True, 1610064010000)
    working = {"status": "open", "filled": "0.20000000", "timestamp": 1610064001000}
    (fill,) = book.reported(order, working, [first])
    assert isinstance(fill, OrderFilled)
    assert (fill.fill_quantity, fill.leaves_quantity, fill.is_final) == (Decimal("0.2"), Decimal("0.3"), False)
    assert (fill.fee, fill.fee_currency, fill.liquidity.value) == (Decimal("7.89"), "USDT", "MAKER")
    assert fill.fill_id == f"{order.order_id}-901" and fill.envelope.occurred_at.timestamp() == 1610064010
    assert book.reported(order, working, [first]) == [], "a trade seen again is not a new fill"

    book.orders[order.order_id].cancel = examples.cancel_accepted(reason="flatten")
    cancelled_report = {**working, "status": "canceled", "lastUpdateTimestamp": 1610064020000}
    (cancelled,) = book.reported(order, cancelled_report, [first])
    assert isinstance(cancelled, OrderCancelled)
    assert (cancelled.cancelled_quantity, cancelled.reason) == (Decimal("0.3"), "flatten")
    assert [fill.envelope.sequence, cancelled.envelope.sequence] == [1, 2]
    assert book.reported(order, cancelled_report, [first]) == [] and not book.open_orders()


def test_a_fee_in_the_base_asset_is_valued_at_the_fill_price_and_a_restart_remembers_it() -> None:
    book = LiveBook("binance", INSTRUMENTS)
    accepted = examples.order_accepted(quantity=Decimal("0.01"), order_type=OrderType.MARKET)
    order = book.accept(accepted)
    assert order is not None
    bought = trade("77", "39433.62", "0.01", "0.00001", "BTC", False, 1610064001076)
    (fill,) = book.reported(order, {"status": "closed", "filled": "0.01"}, [bought])
    assert isinstance(fill, OrderFilled) and fill.is_final
    assert (fill.fee, fill.fee_currency) == (Decimal("0.39433620"), "USDT")  # 0.00001 BTC x 39433.62

    restarted = LiveBook("binance", INSTRUMENTS)
    restarted.accept(accepted)
    restarted.recall(fill)
    assert not restarted.open_orders() and restarted.sequences.last[accepted.order_id] == 1


def test_a_refused_or_expired_order_ends_with_the_reason() -> None:
    book = LiveBook("binance", INSTRUMENTS)
    ioc = book.accept(examples.order_accepted(order_id="o-ioc", time_in_force=TimeInForce.IOC))
    refused = book.accept(examples.order_accepted(order_id="o-big"))
    assert ioc is not None and refused is not None
    (expired,) = book.reported(ioc, {"status": "expired", "filled": "0", "timestamp": 1610064001000}, [])
    assert isinstance(expired, OrderExpired) and expired.reason == "expired at binance"
    gone = book.refused(refused, "InsufficientFunds: no money", expired.envelope.occurred_at)
    assert (
        gone.expired_quantity == Decimal("0.25") and gone.reason == "rejected by binance: InsufficientFunds: no money"
    )
    rejected = book.cancel_rejected(
        examples.cancel_accepted(order_id="o-big"), book.refusal(examples.cancel_accepted(order_id="o-big"))
    )
    assert rejected.reason == "order already expired"
    assert book.refusal(examples.cancel_accepted(order_id="nope")) == "unknown order"


def test_the_exchange_gets_our_order_id_and_plain_decimals() -> None:
    request = order_request(examples.order_accepted(quantity=Decimal("0.25000000"), limit_price=Decimal("39440.00")))
    assert request == {
        "type": "limit",
        "side": "buy",
        "amount": "0.25",
        "price": "39440",
        "params": {"clientOrderId": examples.ORDER, "timeInForce": "GTC"},
    }
