"""The grid of a sweep: ``--sweep name=v1,v2,...`` options into the parameter sets to run, each checked."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from streams.backtest.run import BacktestError
from streams.research import replay


@dataclass(frozen=True)
class Grid:
    names: tuple[str, ...]  # swept parameters, in the order given
    points: list[dict[str, str]]  # each a full parameter set: the fixed --param ones and one value of each swept
    skipped: list[tuple[dict[str, str], str]]  # combinations the settings refuse together, and why


def parse(sweeps: Sequence[str]) -> dict[str, list[str]]:
    """``["ema_fast=3,5,8", ...]`` -> ``{"ema_fast": ["3", "5", "8"]}``.

    Raises:
        BacktestError: not NAME=V1,V2..., an empty value, a name given twice, or an unknown name.
    """
    known = replay.known_params()
    swept: dict[str, list[str]] = {}
    for text in sweeps:
        name, sep, values = text.partition("=")
        name = name.strip()
        listed = [v.strip() for v in values.split(",")]
        if not sep or not name or not values.strip() or "" in listed:
            raise BacktestError(f"--sweep {text!r} is not NAME=V1,V2,...", hint="e.g. --sweep ema_fast=3,5,8")
        if name not in known:
            raise BacktestError(f"--sweep {name}: unknown parameter", hint=f"known: {', '.join(sorted(known))}")
        if name in swept:
            raise BacktestError(f"--sweep {name} is given twice", hint="list all its values in one --sweep")
        if len(set(listed)) != len(listed):
            raise BacktestError(f"--sweep {name}: a value is listed twice ({values})")
        swept[name] = listed
    return swept


def grid(swept: Mapping[str, list[str]], fixed: Mapping[str, str], instrument: str, account: str) -> Grid:
    """Every combination of the swept values on top of ``fixed``, checked as a backtest checks its parameters.

    A combination the settings refuse together (ema_fast not below ema_slow) is skipped; a value refused in every
    combination it is part of is a mistake, and named.

    Raises:
        BacktestError: a swept parameter also given with --param, a bad value, or no valid combination.
    """
    known = replay.known_params()
    unknown = sorted(set(fixed) - known)
    if unknown:
        raise BacktestError(
            f"--param {', '.join(unknown)}: unknown parameter", hint=f"known: {', '.join(sorted(known))}"
        )
    both = sorted(set(swept) & set(fixed))
    if both:
        raise BacktestError(f"{', '.join(both)}: given both with --param and --sweep", hint="give it once")
    names = tuple(swept)
    points, skipped = [], []
    refused: dict[tuple[str, str], list[str]] = {}
    for values in itertools.product(*(swept[n] for n in names)):
        params = {**fixed, **dict(zip(names, values, strict=True))}
        try:
            replay.settings(instrument, account, params)
        except BacktestError as err:
            skipped.append((params, err.args[0]))
            for name, value in zip(names, values, strict=True):
                refused.setdefault((name, value), []).append(err.args[0])
            continue
        points.append(params)
    for name in names:
        for value in swept[name]:
            count = sum(1 for p, _ in skipped if p[name] == value)
            total = len(points) + len(skipped)
            if count and count == total // len(swept[name]):
                raise BacktestError(f"--sweep {name}={value} is refused: {refused[(name, value)][0]}")
    if not points:
        raise BacktestError("no combination of the swept values is valid", hint=skipped[0][1] if skipped else "")
    return Grid(names, points, skipped)
