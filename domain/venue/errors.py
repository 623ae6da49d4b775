"""What the simulated venue refuses: input it cannot execute, and state it cannot restore."""

from domain.errors import DomainError


class ExecutionError(DomainError):
    """Base of the simulated venue's errors; the host dead-letters the input that raised it."""


class UnknownInstrumentError(ExecutionError):
    """An event names an instrument the venues were not given."""


class WrongInstrumentError(ExecutionError):
    """An event reached the venue of another instrument."""


class InvalidOrderError(ExecutionError):
    """An accepted order the venue cannot work: a LIMIT without a price, a quantity not above zero."""


class DuplicateOrderError(ExecutionError):
    """An order was accepted a second time; the venue already knows its id."""


class SnapshotError(ExecutionError):
    """A snapshot that is not one this code wrote for this instrument."""
