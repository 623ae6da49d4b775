"""What the risk engine refuses: input it cannot act on. The host dead-letters the event with the message."""

from domain.errors import DomainError


class RiskError(DomainError):
    """Base of the risk engine's errors."""


class RiskLimitsError(RiskError):
    """A set of risk limits is out of range (a negative quantity, a zero rate...); it was not applied."""


class NotARiskInputError(RiskError):
    """An event the risk engine does not consume reached it: the host routes the wrong topic to it."""


class SnapshotError(RiskError):
    """A snapshot cannot be read: not one this engine wrote, or of another format version."""
