"""Pre-trade risk limits of an account: the engine's defaults, replaced per account by ``RiskLimitsSet``."""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from domain.risk.errors import RiskLimitsError
from schemas.events import RiskLimitsSet


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """The limits every order and amend of an account is checked against (the fields of ``RiskLimitsSet``).

    Quantities are in units of the instrument; notionals and losses in the instrument's quote currency.
    """

    max_order_quantity: Decimal
    """Largest quantity a single order may have."""
    max_order_notional: Decimal
    """Largest quantity times price a single order may have (market orders are valued at the reference price)."""
    max_position_quantity: Decimal
    """Largest absolute position in any one instrument, counting working orders on the side being added to."""
    max_open_notional: Decimal
    """Largest total leaves times price of the working orders in one quote currency, the new order included."""
    daily_loss_limit: Decimal
    """Realized loss since 00:00 UTC beyond which only orders that reduce a position are accepted; positive."""
    max_orders_per_second: int
    """Most orders accepted in any trailing second of event time."""
    price_collar_bps: int
    """Farthest a limit price may be from the reference price, in basis points of the reference."""
    reference_max_age_ms: int
    """Oldest reference price, in ms of event time before (or after) the order, that risk decides on."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_order_quantity", "max_position_quantity"):
            value: Decimal = getattr(self, name)
            if not (value.is_finite() and value > 0):
                problems.append(f"{name} must be positive, got {value}")
        for name in ("max_order_notional", "max_open_notional", "daily_loss_limit"):
            value = getattr(self, name)
            if not (value.is_finite() and value >= 0):
                problems.append(f"{name} must be zero or positive, got {value}")
        for name in ("max_orders_per_second", "price_collar_bps", "reference_max_age_ms"):
            count: int = getattr(self, name)
            if count <= 0:
                problems.append(f"{name} must be positive, got {count}")
        if problems:
            raise RiskLimitsError("; ".join(problems), hint="limits are replaced only by a complete, valid set")

    @classmethod
    def from_event(cls, event: RiskLimitsSet) -> RiskLimits:
        """The limits a ``RiskLimitsSet`` sets; raises ``RiskLimitsError`` when one is out of range."""
        return cls(**{field.name: getattr(event, field.name) for field in fields(cls)})
