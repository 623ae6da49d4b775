"""What the positions processor refuses, each with a reason a dead-letter record can carry."""

from __future__ import annotations

from domain.errors import DomainError


class PositionsError(DomainError):
    """Position keeping failed."""


class InvalidFillError(PositionsError):
    """A fill cannot be applied to the book; the book is left exactly as it was."""


class SnapshotError(PositionsError):
    """A snapshot cannot be read back into a book."""
