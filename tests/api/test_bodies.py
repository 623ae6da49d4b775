"""The strict JSON reader and the per-user bound on read waits, without a server."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from api.bodies import loads
from api.errors import BodyRefused, RateLimited
from api.readtokens import WaitSlots
from commands.models import JsonNumberText


def test_numbers_keep_their_text_unless_exact_in_the_grammar() -> None:
    assert loads(b'{"a": 0.25, "b": 1, "c": 1e3, "d": NaN, "e": -2.50}') == {
        "a": Decimal("0.25"),
        "b": 1,
        "c": JsonNumberText("1e3"),
        "d": JsonNumberText("NaN"),
        "e": Decimal("-2.50"),
    }


def test_a_key_twice_in_any_object_is_refused_by_name() -> None:
    with pytest.raises(BodyRefused) as refused:
        loads(b'{"ticks": [{"bid": "1", "bid": "2"}]}')
    assert refused.value.status_code == 422
    assert refused.value.errors[0]["field"] == "bid"


def test_waits_are_bounded_per_user_and_freed_when_done() -> None:
    async def scenario() -> None:
        slots = WaitSlots(2)
        async with slots.slot("vera"), slots.slot("vera"):
            with pytest.raises(RateLimited):
                async with slots.slot("vera"):
                    pass
            async with slots.slot("rita"):  # another user's bound is their own
                pass
        async with slots.slot("vera"), slots.slot("vera"):
            pass

    asyncio.run(scenario())
