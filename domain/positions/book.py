"""An account's position book: fills in, one ``PositionChanged`` per new fill out, state that snapshots to bytes.

Pure and deterministic — no Kafka, no clock, no randomness — so the live processor, replay and backtest all host
the same book and derive byte-identical events from the same fills. The math is in ``domain.positions.position``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from domain.derive import Sequences, derived_envelope
from domain.positions.errors import InvalidFillError, SnapshotError
from domain.positions.position import COST_METHOD, Position, to_scale
from schemas.events import OrderFilled, PositionChanged

SNAPSHOT_FORMAT = 1


class PositionBook:
    """The positions of one account, per instrument, under average cost.

    State per (account, instrument): the ``Position`` (signed quantity, average price, exact cost basis, realized
    PnL and fees), the ids of the fills already applied (``fill_id`` is unique per instrument), and the sequence of
    the position's ``PositionChanged`` stream, whose aggregate is ``"<account>/<instrument>"``.
    """

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self._positions: dict[str, Position] = {}
        self._fill_ids: dict[str, set[str]] = {}
        self._sequences = Sequences()

    def apply_fill(self, fill: OrderFilled) -> PositionChanged | None:
        """Apply ``fill`` and return the ``PositionChanged`` it causes; None for a fill already applied.

        The event's envelope is derived from the fill (``domain.derive``): event time, correlation and causation
        flow through, and its id and sequence come from the position's own stream, so a replay derives it again
        byte for byte. A fill redelivered (same instrument and ``fill_id``) changes nothing and yields nothing.

        Raises:
            InvalidFillError: the fill belongs to another account or cannot be applied (see
                ``Position.after_fill``); the book is unchanged, so the caller can dead-letter the fill and go on.
        """
        if fill.account_id != self.account_id:
            raise InvalidFillError(
                f"fill {fill.fill_id} is for account {fill.account_id!r}, not {self.account_id!r}",
                hint="fills must be routed to the book of their own account",
            )
        seen = self._fill_ids.get(fill.instrument)
        if seen is not None and fill.fill_id in seen:
            return None

        after = self.position(fill.instrument).after_fill(
            side=fill.side,
            quantity=fill.fill_quantity,
            price=fill.fill_price,
            fee=fill.fee,
            fee_currency=fill.fee_currency,
        )
        aggregate_id = f"{self.account_id}/{fill.instrument}"
        event = PositionChanged(
            envelope=derived_envelope(PositionChanged, fill, aggregate_id, self._sequences.next(aggregate_id)),
            account_id=self.account_id,
            instrument=fill.instrument,
            quantity=to_scale(after.quantity),
            average_price=to_scale(after.average_price),
            realized_pnl=to_scale(after.realized_pnl),
            fees_paid=to_scale(after.fees_paid),
            fill_id=fill.fill_id,
            cost_method=COST_METHOD,
        )
        self._positions[fill.instrument] = after
        self._fill_ids.setdefault(fill.instrument, set()).add(fill.fill_id)
        return event

    def position(self, instrument: str) -> Position:
        """The position in ``instrument``; flat if the account never traded it."""
        found = self._positions.get(instrument)
        return found if found is not None else Position(account_id=self.account_id, instrument=instrument)

    @property
    def positions(self) -> Mapping[str, Position]:
        """Every instrument the account has traded, with its position (read-only)."""
        return MappingProxyType(self._positions)

    def to_snapshot(self) -> bytes:
        """The whole state as deterministic JSON (sorted keys and ids, decimals as exact strings)."""
        document = {
            "format": SNAPSHOT_FORMAT,
            "account_id": self.account_id,
            "positions": [
                _position_document(self._positions[instrument], self._fill_ids[instrument])
                for instrument in sorted(self._positions)
            ],
            "sequences": dict(sorted(self._sequences.last.items())),
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_snapshot(cls, data: bytes) -> PositionBook:
        """The book ``to_snapshot`` wrote; raises SnapshotError if ``data`` is not such a snapshot."""
        try:
            document = json.loads(data)
            if document["format"] != SNAPSHOT_FORMAT:
                raise SnapshotError(f"snapshot format {document['format']!r}; this book reads {SNAPSHOT_FORMAT}")
            book = cls(_text(document, "account_id"))
            for entry in document["positions"]:
                position = _position(book.account_id, entry)
                book._positions[position.instrument] = position
                book._fill_ids[position.instrument] = _fill_ids(entry)
            book._sequences = _sequences(document["sequences"])
        except SnapshotError:
            raise
        except KeyError as err:
            raise SnapshotError(f"not a position book snapshot: {err} is missing") from err
        except (ValueError, TypeError, AttributeError) as err:
            raise SnapshotError(f"not a position book snapshot: {err}") from err
        return book


def _position_document(position: Position, fill_ids: set[str]) -> dict[str, Any]:
    # format(.., "f") writes every digit and no exponent; state decimals never have a positive exponent, so
    # Decimal(text) reads back the same value with the same exponent, and the next snapshot is byte-identical.
    return {
        "instrument": position.instrument,
        "quantity": format(position.quantity, "f"),
        "average_price": format(position.average_price, "f"),
        "cost_basis": format(position.cost_basis, "f"),
        "realized_pnl": format(position.realized_pnl, "f"),
        "fees_paid": format(position.fees_paid, "f"),
        "fee_currency": position.fee_currency,
        "fill_ids": sorted(fill_ids),
    }


def _position(account_id: str, entry: Mapping[str, Any]) -> Position:
    currency = entry["fee_currency"]
    return Position(
        account_id=account_id,
        instrument=_text(entry, "instrument"),
        quantity=_decimal(entry, "quantity"),
        average_price=_decimal(entry, "average_price"),
        cost_basis=_decimal(entry, "cost_basis"),
        realized_pnl=_decimal(entry, "realized_pnl"),
        fees_paid=_decimal(entry, "fees_paid"),
        fee_currency=None if currency is None else _text(entry, "fee_currency"),
    )


def _text(document: Mapping[str, Any], key: str) -> str:
    value = document[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is {value!r}, not a string")
    return value


def _decimal(document: Mapping[str, Any], key: str) -> Decimal:
    text = _text(document, key)
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ValueError(f"{key} is {text!r}, not a finite decimal")
    return number


def _fill_ids(entry: Mapping[str, Any]) -> set[str]:
    ids = entry["fill_ids"]
    if not isinstance(ids, list) or not all(isinstance(fill_id, str) for fill_id in ids):
        raise TypeError(f"fill_ids of {entry['instrument']} is not a list of strings")
    return set(ids)


def _sequences(document: Mapping[str, Any]) -> Sequences:
    last: dict[str, int] = {}
    for aggregate_id, value in document.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise TypeError(f"sequence of {aggregate_id} is {value!r}, not a positive integer")
        last[str(aggregate_id)] = value
    return Sequences(last)
