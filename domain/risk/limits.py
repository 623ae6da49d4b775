"""Pre-trade risk limits of an account: the engine's defaults, replaced per account by ``RiskLimitsSet``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from domain.risk.errors import RiskLimitsError
from schemas.events import RiskLimitsSet


class Kind(StrEnum):
    """What a limit measures, which fixes its type wherever it is written (event, command, settings, read model)."""

    QUANTITY = "quantity"  # units of the instrument: decimal(18, 8), positive
    MONEY = "money"  # the quote currency: decimal(28, 8), zero or positive
    COUNT = "count"  # a positive int
    MILLIS = "millis"  # a positive duration in ms: a long


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit's definition: the only place its type, bounds, default and meaning are written."""

    kind: Kind
    doc: str
    default: Decimal | int  # the engine's until an account's RiskLimitsSet
    most: int | None = None  # the largest a client may set (the command refuses more)

    def problem(self, name: str, value: Decimal | int) -> str | None:
        """What is wrong with ``value`` for this limit, or None."""
        if self.kind is Kind.MONEY:
            ok = isinstance(value, Decimal) and value.is_finite() and value >= 0
            return None if ok else f"{name} must be zero or positive, got {value}"
        ok = value.is_finite() and value > 0 if isinstance(value, Decimal) else value > 0
        return None if ok else f"{name} must be positive, got {value}"


def _limit(kind: Kind, doc: str, default: Decimal | int, most: int | None = None) -> dict[str, Limit]:
    return {"limit": Limit(kind, doc, default, most)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """The limits every order and amend of an account is checked against (the fields of ``RiskLimitsSet``).

    The one definition of the limits: the ``SetRiskLimits`` command, the processors' default settings and the
    ``risk_limits`` read model are built from ``LIMITS``; a test holds the event's Avro schema to it.
    Quantities are in units of the instrument; notionals and losses in the instrument's quote currency.
    """

    max_order_quantity: Decimal = field(
        metadata=_limit(Kind.QUANTITY, "Largest quantity a single order may have.", Decimal(100))
    )
    max_order_notional: Decimal = field(
        metadata=_limit(
            Kind.MONEY,
            "Largest quantity times price a single order may have (market orders are valued at the reference price).",
            Decimal(1_000_000),
        )
    )
    max_position_quantity: Decimal = field(
        metadata=_limit(
            Kind.QUANTITY,
            "Largest absolute position in any one instrument, counting working orders on the side being added to.",
            Decimal(1_000),
        )
    )
    max_open_notional: Decimal = field(
        metadata=_limit(
            Kind.MONEY,
            "Largest total leaves times price of the working orders in one quote currency, the new order included.",
            Decimal(5_000_000),
        )
    )
    daily_loss_limit: Decimal = field(
        metadata=_limit(
            Kind.MONEY,
            "Realized loss since 00:00 UTC beyond which only orders that reduce a position are accepted; positive.",
            Decimal(100_000),
        )
    )
    max_orders_per_second: int = field(
        metadata=_limit(Kind.COUNT, "Most orders accepted in any trailing second of event time.", 100, most=100_000)
    )
    price_collar_bps: int = field(
        metadata=_limit(
            Kind.COUNT,
            "Farthest a limit price may be from the reference price, in basis points of the reference.",
            500,
            most=10_000,
        )
    )
    reference_max_age_ms: int = field(
        metadata=_limit(
            Kind.MILLIS,
            "Oldest reference price, in ms of event time before (or after) the order, that risk decides on; "
            "older is stale: fail closed.",
            60_000,
        )
    )

    def __post_init__(self) -> None:
        problems = [p for name, limit in LIMITS.items() if (p := limit.problem(name, getattr(self, name)))]
        if problems:
            raise RiskLimitsError("; ".join(problems), hint="limits are replaced only by a complete, valid set")

    @classmethod
    def from_event(cls, event: RiskLimitsSet) -> RiskLimits:
        """The limits a ``RiskLimitsSet`` sets; raises ``RiskLimitsError`` when one is out of range."""
        return cls(**{field.name: getattr(event, field.name) for field in fields(cls)})


# Every limit by name, in the order of the event's fields.
LIMITS: MappingProxyType[str, Limit] = MappingProxyType({f.name: f.metadata["limit"] for f in fields(RiskLimits)})
