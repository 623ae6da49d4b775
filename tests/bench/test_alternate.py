"""``bench/alternate.py``: which side ran first in each pair, and what its table says of the figures it was given."""

from __future__ import annotations

import subprocess

import pytest

from bench import alternate
from bench.common import ROOT, BenchError


def test_each_side_runs_first_in_every_other_pair() -> None:
    assert list(alternate.turns(3)) == [(0, "base"), (0, "head"), (1, "head"), (1, "base"), (2, "base"), (2, "head")]


def test_a_spread_stands_for_its_median_and_a_plain_figure_for_itself() -> None:
    figures = {"api": {"2": {"max": {"cpu": {"median": 0.41, "min": 0.3, "max": 0.5}, "rate": 1974}}}}
    assert alternate.pick(figures, "api.2.max.cpu") == 0.41
    assert alternate.pick(figures, "api.2.max.rate") == 1974.0


def test_a_path_not_there_names_where_it_stopped_and_what_was_there() -> None:
    figures = {"api": {"2": {"max": {"cpu": 0.4}}}}
    with pytest.raises(BenchError, match=r"at api\.2: \['max'\]"):
        alternate.pick(figures, "api.2.loads.cpu")
    with pytest.raises(BenchError, match="not a number"):
        alternate.pick(figures, "api.2.max")


def test_the_pairs_won_are_counted_pair_by_pair_not_from_the_medians() -> None:
    # The working tree lower in two pairs of three, though its median is the higher.
    c = alternate.compare([0.40, 0.30, 0.50], [0.35, 0.45, 0.45])
    assert (c["base_median"], c["head_median"], c["head_lower"], c["pairs"]) == (0.40, 0.45, 2, 3)
    assert c["ratio"] == pytest.approx(1.125)


def test_the_base_revision_is_checked_out_and_removed_after() -> None:
    with alternate.worktree("HEAD") as tree:
        assert (tree / "bench" / "common.py").exists()
        listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True)
        assert str(tree) in listed.stdout
    assert not tree.exists()
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True)
    assert str(tree) not in listed.stdout


def test_a_revision_that_does_not_exist_says_so() -> None:
    with pytest.raises(BenchError, match="cannot check out 'no-such-revision'"), alternate.worktree("no-such-revision"):
        pass
