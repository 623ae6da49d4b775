"""`POST /v1/orders` bodies decoded by msgspec, the hot route's floor (issue 16 item 3).

``commands.models.PlaceOrder`` stays the definition of a valid order: its rules, its OpenAPI schema and its 422
errors. ``decode`` takes only a body it can prove valid by those same rules and builds the very ``PlaceOrder``
pydantic would; for any other body (a wrong type, a missing or unknown field, a key given twice, a decimal outside
the grammar or its bounds, a JSON number, whitespace pydantic would strip, an escape) it answers None and the route
lets pydantic read the body, so a bad body gets the problem+json it always got, word for word.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from commands.models import DECIMAL_GRAMMAR, PlaceOrder
from schemas.events import OrderType, Side, TimeInForce

# PlaceOrder's Id. \Z, not $: Python's $ also matches before a final newline, which pydantic strips first
# (str_strip_whitespace) — such a value must go to pydantic, not through here unstripped.
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+\Z")]
_DECIMAL = re.compile(DECIMAL_GRAMMAR)
# Positive: above 0, at most 18 digits of which at most 8 after the point.
_MAX_DIGITS, _MAX_PLACES = 18, 8
# A key and the colon after it. Without a backslash in the body every '"' delimits a string and no string holds one.
_KEY = re.compile(rb'"([^"]*)"\s*:')


class _Place(msgspec.Struct, forbid_unknown_fields=True):
    """PlaceOrder's fields as msgspec reads them: decimals as text (a JSON number goes to pydantic), optional
    fields UNSET when absent so the model records which fields the client gave, as pydantic does."""

    account_id: _Id
    client_order_id: _Id
    instrument: _Id
    side: Side
    order_type: OrderType
    quantity: str
    time_in_force: TimeInForce | msgspec.UnsetType = msgspec.UNSET
    limit_price: str | msgspec.UnsetType | None = msgspec.UNSET


_decoder = msgspec.json.Decoder(_Place)


def _positive(text: str) -> Decimal | None:
    """``text`` as a Decimal when it is a Positive one: in the grammar, above 0, within the digits. Digits are
    counted with trailing zeros, where pydantic leaves them out: never more lenient, and a body it would still take
    goes to it."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = Decimal(text)
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # the grammar has no NaN or Infinity
    places = max(0, -exponent)
    whole = len(digits) + exponent if exponent >= 0 else max(len(digits), places)
    if value <= 0 or whole > _MAX_DIGITS or places > _MAX_PLACES:
        return None
    return value


def decode(body: bytes) -> PlaceOrder | None:
    """The order in ``body`` when msgspec and the rules above take it whole; else None (pydantic decides)."""
    if b"\\" in body:  # an escaped key could hide a repeat from the count below
        return None
    try:
        place = _decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError included
        return None
    keys = _KEY.findall(body)
    if len(keys) != len(set(keys)):  # msgspec keeps the last of a repeated key; the strict reader refuses it
        return None
    quantity = _positive(place.quantity)
    if quantity is None:
        return None
    given: dict[str, Any] = {
        "account_id": place.account_id,
        "client_order_id": place.client_order_id,
        "instrument": place.instrument,
        "side": place.side,
        "order_type": place.order_type,
        "quantity": quantity,
    }
    if place.time_in_force is not msgspec.UNSET:
        given["time_in_force"] = place.time_in_force
    if isinstance(place.limit_price, str):
        limit_price = _positive(place.limit_price)
        if limit_price is None:
            return None
        given["limit_price"] = limit_price
    elif place.limit_price is None:
        given["limit_price"] = None
    return PlaceOrder.model_construct(**given)
