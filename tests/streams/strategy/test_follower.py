"""The signal follower places one clip per change of direction, through the same validation as the API."""

from decimal import Decimal

from domain.instruments import InstrumentRegistry
from schemas.events import Direction, OrderType, Side, TimeInForce
from streams.strategy.follower import FollowedAccount, SignalFollower
from tests.support.events import signal_generated

INSTRUMENTS = InstrumentRegistry.from_file()
CLIP = FollowedAccount(account_id="ACC-S1", instrument="BTCUSDT", quantity=Decimal("0.01"))


def signal(direction: Direction, indicator: str = "ema_cross(12,26)", instrument: str = "BTCUSDT"):  # type: ignore[no-untyped-def]
    return signal_generated(direction=direction, indicator=indicator, instrument=instrument)


def test_it_buys_on_long_sells_on_short_and_ignores_repeats() -> None:
    follower = SignalFollower([CLIP], INSTRUMENTS)
    first = follower.handle(signal(Direction.LONG))
    assert follower.handle(signal(Direction.LONG)) == []  # already long: no second clip
    flip = follower.handle(signal(Direction.SHORT))
    assert [(o.side, o.quantity, o.order_type, o.time_in_force) for o in first + flip] == [
        (Side.BUY, Decimal("0.01"), OrderType.MARKET, TimeInForce.IOC),
        (Side.SELL, Decimal("0.01"), OrderType.MARKET, TimeInForce.IOC),
    ]
    assert first[0].account_id == "ACC-S1" and first[0].envelope.causation_id is not None


def test_other_indicators_instruments_and_flat_signals_place_nothing() -> None:
    follower = SignalFollower([CLIP], INSTRUMENTS)
    assert follower.handle(signal(Direction.LONG, indicator="rsi(14)")) == []
    assert follower.handle(signal(Direction.LONG, instrument="EURUSD")) == []
    assert follower.handle(signal(Direction.FLAT)) == []


def test_the_same_signal_places_the_same_order_on_replay() -> None:
    s = signal(Direction.LONG)
    assert SignalFollower([CLIP], INSTRUMENTS).handle(s) == SignalFollower([CLIP], INSTRUMENTS).handle(s)


def test_a_clip_off_the_lot_size_places_nothing() -> None:
    bad = CLIP.model_copy(update={"quantity": Decimal("0.0000001")})
    assert SignalFollower([bad], INSTRUMENTS).handle(signal(Direction.LONG)) == []
