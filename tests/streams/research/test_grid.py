"""--sweep parsing and the grid it makes: every combination, checked; mistakes named."""

from __future__ import annotations

import pytest

from streams.backtest.run import BacktestError
from streams.research.grid import grid, parse


def test_a_sweep_lists_values_per_name() -> None:
    assert parse(["ema_fast=3,5,8", "ema_slow= 13, 21"]) == {"ema_fast": ["3", "5", "8"], "ema_slow": ["13", "21"]}


@pytest.mark.parametrize(
    ("sweeps", "says"),
    [
        (["ema_fast"], "is not NAME=V1,V2"),
        (["ema_fast="], "is not NAME=V1,V2"),
        (["ema_fast=3,,5"], "is not NAME=V1,V2"),
        (["emma_fast=3,5"], "emma_fast: unknown parameter"),
        (["ema_fast=3", "ema_fast=5"], "given twice"),
        (["ema_fast=3,3"], "listed twice"),
    ],
)
def test_malformed_sweeps_are_named(sweeps: list[str], says: str) -> None:
    with pytest.raises(BacktestError, match=says):
        parse(sweeps)


def test_the_grid_is_every_combination_in_order_on_top_of_the_fixed_params() -> None:
    made = grid({"ema_fast": ["3", "5"], "ema_slow": ["13", "21"]}, {"quantity": "0.02"}, "BTCUSDT", "BT-1")
    assert made.names == ("ema_fast", "ema_slow")
    assert [(p["ema_fast"], p["ema_slow"], p["quantity"]) for p in made.points] == [
        ("3", "13", "0.02"), ("3", "21", "0.02"), ("5", "13", "0.02"), ("5", "21", "0.02"),
    ]  # fmt: skip


def test_combinations_refused_together_are_skipped_with_the_reason() -> None:
    made = grid({"ema_fast": ["5", "30"], "ema_slow": ["10", "40"]}, {}, "BTCUSDT", "BT-1")
    assert [(p["ema_fast"], p["ema_slow"]) for p in made.points] == [("5", "10"), ("5", "40"), ("30", "40")]
    [(skipped, why)] = made.skipped
    assert (skipped["ema_fast"], skipped["ema_slow"]) == ("30", "10") and "must be shorter than ema_slow" in why


@pytest.mark.parametrize(
    ("swept", "says"),
    [
        ({"ema_fast": ["3", "x"], "ema_slow": ["13"]}, "ema_fast=x is refused"),
        ({"quantity": ["0.01", "-1"]}, "quantity=-1 is refused"),
        ({"bar_interval": ["PT1S", "PT7S"]}, "bar_interval=PT7S is refused"),
    ],
)
def test_a_bad_value_is_named(swept: dict[str, list[str]], says: str) -> None:
    with pytest.raises(BacktestError, match=says):
        grid(swept, {}, "BTCUSDT", "BT-1")


def test_an_unknown_fixed_parameter_is_named_as_such() -> None:
    with pytest.raises(BacktestError, match="--param colour: unknown parameter"):
        grid({"ema_fast": ["3"]}, {"colour": "red"}, "BTCUSDT", "BT-1")


def test_a_parameter_both_fixed_and_swept_is_refused() -> None:
    with pytest.raises(BacktestError, match="ema_fast: given both with --param and --sweep"):
        grid({"ema_fast": ["3"]}, {"ema_fast": "5"}, "BTCUSDT", "BT-1")
