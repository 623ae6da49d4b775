from __future__ import annotations

from dataclasses import dataclass

from schemas.errors import TradecoreError


class CommandError(TradecoreError):
    """A command could not be carried out."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: which field, which rule, and a sentence a trader understands."""

    field: str
    rule: str
    message: str


class CommandRejected(CommandError):
    """A command broke one or more validation rules; nothing was appended."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = violations
