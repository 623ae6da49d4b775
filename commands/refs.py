from __future__ import annotations

from dataclasses import dataclass

from schemas.events import OrderType


@dataclass(frozen=True, slots=True)
class OrderRef:
    """What the write side remembers of a placed order: enough to route, authorize and validate later commands."""

    order_id: str
    account_id: str
    instrument: str
    order_type: OrderType
