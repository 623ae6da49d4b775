"""The msgspec reading of `POST /v1/orders` bodies (api/place_body.py) against pydantic's, without a server: it takes a
valid order as the very PlaceOrder pydantic makes, and declines — leaving the body to pydantic — whatever pydantic
would refuse or would have to change (strip, normalize) first."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.bodies import loads
from api.errors import BodyRefused
from api.place_body import decode
from commands.models import PlaceOrder
from tests.support.properties import example_count

VALID = {
    "account_id": "ACC-1",
    "client_order_id": "desk7:000123",
    "instrument": "BTCUSDT",
    "side": "BUY",
    "order_type": "LIMIT",
    "time_in_force": "IOC",
    "quantity": "0.25",
    "limit_price": "39420.50",
}


def pydantic_reading(raw: bytes) -> PlaceOrder | None:
    """What the route read before msgspec: the strict JSON reader, then PlaceOrder; None when it refuses."""
    try:
        return PlaceOrder.model_validate(loads(raw))
    except (BodyRefused, ValidationError, ValueError):
        return None


def same_order(fast: PlaceOrder, slow: PlaceOrder) -> bool:
    """The same fields, values, decimal digits and given fields: what the fingerprint, the event and the ack see."""
    return (
        fast.model_dump_json() == slow.model_dump_json()
        and fast.model_fields_set == slow.model_fields_set
        and {k: type(v) for k, v in fast} == {k: type(v) for k, v in slow}
    )


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"time_in_force": None},  # absent: GTC, and not among the fields given
        {"limit_price": None},
        {"order_type": "MARKET", "limit_price": None, "time_in_force": "FOK"},
        {"quantity": "123456789.12345678"},  # 17 digits, 8 places: the most the bounds allow
        {"quantity": "0000.10"},
        {"side": "SELL", "client_order_id": "a" * 64},
    ],
)
def test_a_valid_order_is_read_as_pydantic_reads_it(changes: dict[str, object]) -> None:
    body = {k: v for k, v in {**VALID, **changes}.items() if v is not None}
    raw = json.dumps(body).encode()
    fast, slow = decode(raw), pydantic_reading(raw)
    assert fast is not None and slow is not None
    assert same_order(fast, slow)


def test_an_explicit_null_price_is_a_field_given() -> None:
    raw = json.dumps({**VALID, "limit_price": None}).encode()
    fast = decode(raw)
    assert fast is not None and fast.limit_price is None and "limit_price" in fast.model_fields_set


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps({**VALID, "account_id": " ACC-1 "}).encode(),  # pydantic strips it
        json.dumps({**VALID, "instrument": "BTCUSDT\n"}).encode(),  # Python's $ would match before the newline
        json.dumps({**VALID, "limit_price": "39420.500000000"}).encode(),  # 9 places, 1 once pydantic normalizes
        json.dumps(VALID).replace('"quantity": "0.25"', '"quantity": 1').encode(),  # an exact JSON number
        json.dumps(VALID).replace('"side"', '"\\u0073ide"').encode(),  # an escape
    ],
    ids=["spaces", "newline", "trailing zeros", "number", "escape"],
)
def test_a_body_pydantic_must_reshape_is_left_to_it(raw: bytes) -> None:
    assert decode(raw) is None
    assert pydantic_reading(raw) is not None


@pytest.mark.parametrize(
    "raw",
    [
        json.dumps(VALID)[:-1].encode() + b', "account_id": "ACC-2"}',
        json.dumps({**VALID, "status": "FILLED"}).encode(),
        json.dumps({k: v for k, v in VALID.items() if k != "quantity"}).encode(),
        json.dumps({**VALID, "quantity": "1e3"}).encode(),
        json.dumps({**VALID, "quantity": "-0"}).encode(),
        json.dumps({**VALID, "limit_price": "1234567890123.123456"}).encode(),
        json.dumps({**VALID, "side": "buy"}).encode(),
        json.dumps({**VALID, "account_id": 1}).encode(),
        b"[]",
        b"{",
        b"\xff",
    ],
    ids=[
        "repeated key",
        "extra",
        "missing",
        "exponent",
        "negative zero",
        "19 digits",
        "lower case",
        "int",
        "list",
        "truncated",
        "not UTF-8",
    ],
)
def test_a_body_pydantic_refuses_is_left_to_it(raw: bytes) -> None:
    assert decode(raw) is None
    assert pydantic_reading(raw) is None


# A valid order, field by field: what msgspec must take, and take as pydantic does.
VALID_FIELDS = {
    "account_id": st.from_regex(r"\A[A-Za-z0-9._:\-]{1,64}\Z"),
    "client_order_id": st.from_regex(r"\A[A-Za-z0-9._:\-]{1,64}\Z"),
    "instrument": st.from_regex(r"\A[A-Za-z0-9._:\-]{1,64}\Z"),
    "side": st.sampled_from(["BUY", "SELL"]),
    "order_type": st.sampled_from(["LIMIT", "MARKET"]),
    "time_in_force": st.sampled_from(["GTC", "IOC", "FOK"]),
    "quantity": st.from_regex(r"\A0*[1-9][0-9]{0,9}(\.[0-9]{1,8})?\Z"),
    "limit_price": st.one_of(st.none(), st.from_regex(r"\A[0-9]{0,9}[1-9](\.[0-9]{1,8})?\Z")),
}
OPTIONAL = ("time_in_force", "limit_price")
# What a field may be given instead: off its pattern, its bounds or its type, or text pydantic would reshape.
WRONG = (
    st.sampled_from(
        [
            "",
            " a",
            "a\n",
            "a b",
            "\u00e9",
            "a\u0000",
            "x" * 65,
            "buy",
            "STOP",
            "GTD",
            "0",
            "-1",
            "0.0",
            "1e3",
            "NaN",
            "1.",
            ".5",
            " 1",
            "1_0",
            "\u0661",
            "1.123456789",
            "1234567890123.123456",
            "1.000000000",
        ]
    )
    | st.integers()
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.just([])
    | st.none()
)


@st.composite
def valid_bodies(draw: st.DrawFn) -> bytes:
    body = {name: draw(values) for name, values in VALID_FIELDS.items()}
    for name in OPTIONAL:
        if draw(st.booleans()):
            del body[name]
    return json.dumps(body).encode()


@st.composite
def altered_bodies(draw: st.DrawFn) -> bytes:
    """A valid order with one or two fields given wrong, left out, or a field added."""
    body = json.loads(draw(valid_bodies()))
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from([*VALID_FIELDS, "status"]))
        change = draw(st.sampled_from(["wrong", "missing"]))
        if change == "missing":
            body.pop(name, None)
        else:
            body[name] = draw(WRONG)
    return json.dumps(body).encode()


@settings(max_examples=example_count(150), deadline=None)
@given(valid_bodies())
def test_msgspec_takes_every_valid_order_as_pydantic_does(raw: bytes) -> None:
    fast, slow = decode(raw), pydantic_reading(raw)
    assert slow is not None, raw
    assert fast is not None, raw
    assert same_order(fast, slow), raw


@settings(max_examples=example_count(300), deadline=None)
@given(altered_bodies())
def test_msgspec_never_takes_what_pydantic_would_not_take_the_same(raw: bytes) -> None:
    fast = decode(raw)
    if fast is not None:
        slow = pydantic_reading(raw)
        assert slow is not None, raw
        assert same_order(fast, slow), raw
