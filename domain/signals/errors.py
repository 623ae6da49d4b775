"""Errors of the signal engine."""

from domain.errors import DomainError


class SignalsError(DomainError):
    """A failure of the signal engine."""


class SnapshotError(SignalsError):
    """A snapshot cannot be restored: not one of ours, a format this version does not read, or damaged."""
