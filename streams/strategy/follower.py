"""Follow one indicator's signals with a fixed clip: go long on LONG, short on SHORT, once per change of mind.

Orders are built exactly as the API builds them — validated by ``commands.validation`` and decided by
``commands.decide`` — and go to ``orders``, where pre-trade risk checks them like any client's. The client order id
derives from the signal, so a replay places the very same orders, and risk's duplicate check would refuse a repeat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from commands import decide
from commands.errors import CommandRejected
from commands.models import PlaceOrder
from commands.validation import validate_place
from domain.instruments import Instrument
from schemas.events import Direction, OrderPlaced, OrderType, Side, SignalGenerated, TimeInForce


class FollowedAccount(BaseModel):
    """One account the strategy trades, in one instrument."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str = Field(description="The account the strategy places orders for.")
    instrument: str = Field(description="The instrument it trades there.")
    quantity: Decimal = Field(gt=0, description="Quantity of each order (one clip per change of direction).")
    indicator: str = Field("ema_cross", description="Which signals to follow: the indicator name up to '('.")


class SignalFollower:
    def __init__(self, accounts: Sequence[FollowedAccount], instruments: Mapping[str, Instrument]) -> None:
        self.accounts = list(accounts)
        self.instruments = instruments
        self.direction: dict[tuple[str, str], Direction] = {}

    def handle(self, signal: SignalGenerated) -> list[OrderPlaced]:
        orders = []
        for account in self.accounts:
            if account.instrument != signal.instrument or signal.indicator.split("(")[0] != account.indicator:
                continue
            if signal.direction is Direction.FLAT or self.direction.get(self._key(account)) is signal.direction:
                continue
            self.direction[self._key(account)] = signal.direction
            command = PlaceOrder(
                account_id=account.account_id,
                client_order_id=f"strategy-{signal.envelope.event_id.hex[:20]}",
                instrument=account.instrument,
                side=Side.BUY if signal.direction is Direction.LONG else Side.SELL,
                order_type=OrderType.MARKET,
                time_in_force=TimeInForce.IOC,
                quantity=account.quantity,
            )
            try:
                validate_place(command, self.instruments)
            except CommandRejected:
                continue  # a misconfigured clip (off the lot size, say) places nothing rather than garbage
            stamp = decide.Stamp(
                at=signal.envelope.occurred_at,
                correlation_id=signal.envelope.correlation_id,
                causation_id=str(signal.envelope.event_id),
            )
            orders.append(decide.place_order(command, stamp))
        return orders

    @staticmethod
    def _key(account: FollowedAccount) -> tuple[str, str]:
        return (account.account_id, account.instrument)
