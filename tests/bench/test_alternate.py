"""``bench/alternate.py``: which side ran first in each pair, and what its table says of the figures it was given."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import alternate
from bench.common import BenchError


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


def _repository(at: Path) -> Path:
    """A repository of two commits: ``first`` holds a.txt, the second (HEAD) b.txt."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(at)]
    subprocess.run(["git", "init", "-q", str(at)], check=True)
    (at / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], check=True)
    subprocess.run([*git, "tag", "first"], check=True)
    (at / "b.txt").write_text("b")
    subprocess.run([*git, "add", "b.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "b"], check=True)
    return at


def _worktrees(repository: Path) -> str:
    return subprocess.run(["git", "-C", str(repository), "worktree", "list"], capture_output=True, text=True).stdout


def test_the_base_revision_is_checked_out_beside_the_working_tree_and_removed_after(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    with alternate.worktree("first", repository) as tree:
        assert (tree / "a.txt").exists() and not (tree / "b.txt").exists()  # the base, not HEAD
        (tree / "results").mkdir()  # what a benchmark leaves behind
        (tree / "results" / "run.json").write_text("{}")
        assert str(tree) in _worktrees(repository)
    assert not tree.exists() and not tree.parent.exists()
    assert str(tree) not in _worktrees(repository)
    assert (repository / "b.txt").exists()  # the working tree untouched


def test_a_revision_that_does_not_exist_says_so(tmp_path: Path) -> None:
    repository = _repository(tmp_path / "repo")
    with (
        pytest.raises(BenchError, match="cannot check out 'no-such-revision'"),
        alternate.worktree("no-such-revision", repository),
    ):
        pass
