"""Positions and PnL per account and instrument under average cost: pure logic the positions processor hosts.

``PositionBook.apply_fill`` turns each new ``OrderFilled`` into a ``PositionChanged``; ``mark_to_market`` values an
open position at a price. The cost method, the currency assumption and the rounding and residue policy are set out
in ``domain.positions.position``.
"""

from domain.positions.book import PositionBook
from domain.positions.errors import InvalidFillError, PositionsError, SnapshotError
from domain.positions.position import COST_METHOD, Position, mark_to_market

__all__ = [
    "COST_METHOD",
    "InvalidFillError",
    "Position",
    "PositionBook",
    "PositionsError",
    "SnapshotError",
    "mark_to_market",
]
