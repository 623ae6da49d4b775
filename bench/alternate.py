"""Two revisions of the code under one benchmark, in turn: whether a change moved a figure, on a machine whose speed
drifts by half within an hour (docs/PERFORMANCE.md, "Stop 46").

    .venv/bin/python bench/alternate.py --base main~3 --pairs 3 \\
        --metric api.2.max.server_cpu_ms_per_order --metric bare.2.server_cpu_ms_per_request \\
        -- order_entry.py --quick --workers 2 --loads 100,1000 --duration 10 --tick-batches 1000 --retries 0

The base revision is checked out in a worktree of its own (removed at the end) and the benchmark runs from each tree
in turn, ``--pairs`` times — the base first in odd pairs, the working tree first in even ones, so a drift of the
machine's speed during the run, or a benchmark that leaves the stack slower than it found it, weighs on both sides
alike. Each run is the benchmark's own script from that tree, with that tree first on ``PYTHONPATH`` (the servers
and workers it starts import the same code); what both share is the stack, the virtual environment and what is built
into it (the Rust codec: a change to it is not compared here).

A metric is a dotted path into the figures a benchmark prints as its last line (its ``results.json``); a figure kept
as a spread over repeats stands for its median. The table gives each side's runs and median, the ratio of the
medians (working tree ÷ base), and in how many pairs the working tree's figure was the lower: a change that wins
three pairs of three in a 10 % spread is worth a second look, one that wins two is noise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import RESULTS, ROOT, BenchError, fmt, log, report
from deploy.local.settings import StackSettings
from deploy.local.stack import LocalStack

SIDES = ("base", "head")


def turns(pairs: int) -> Iterator[tuple[int, str]]:
    """(pair, side) in the order they run: base first in the first pair, then the other way round, and so on."""
    for pair in range(pairs):
        for side in SIDES if pair % 2 == 0 else SIDES[::-1]:
            yield pair, side


def pick(figures: Mapping[str, Any], path: str) -> float:
    """The figure at dotted ``path`` (a spread stands for its median); a path that is not there names what is."""
    value: Any = figures
    walked: list[str] = []
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            here = sorted(value) if isinstance(value, Mapping) else type(value).__name__
            raise BenchError(f"the benchmark's figures have no {path!r}: at {'.'.join(walked) or 'the top'}: {here}")
        value = value[key]
        walked.append(key)
    if isinstance(value, Mapping) and "median" in value:
        value = value["median"]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BenchError(f"{path!r} is not a number: {value!r}")
    return float(value)


def compare(base: Sequence[float], head: Sequence[float]) -> dict[str, Any]:
    """Both sides' runs of one metric, pair by pair: medians, their ratio, and the pairs the working tree had lower."""
    base_median, head_median = statistics.median(base), statistics.median(head)
    return {
        "base": list(base),
        "head": list(head),
        "base_median": base_median,
        "head_median": head_median,
        "ratio": head_median / base_median if base_median else None,
        "head_lower": sum(h < b for b, h in zip(base, head, strict=True)),
        "pairs": len(base),
    }


def stack_env() -> dict[str, str]:
    """The stack's addresses, as ``tradecore stack up`` wrote them: a benchmark run from the worktree has none."""
    written = LocalStack(StackSettings(stack_dir=ROOT / ".stack")).written_endpoints()
    if not written:
        raise BenchError("no .stack/env: start the stack first (`.venv/bin/tradecore stack up`)")
    return written


@contextmanager
def worktree(revision: str, repository: Path = ROOT) -> Iterator[Path]:
    """``revision`` of ``repository`` checked out (detached) in a scratch directory, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="tradecore-base-"))
    tree = scratch / "tree"
    done = subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision], cwd=repository, capture_output=True, text=True
    )
    try:
        if done.returncode != 0:
            raise BenchError(f"cannot check out {revision!r}: {done.stderr.strip()}")
        yield tree
    finally:
        # (what the benchmark left in the tree goes too: its results, the load generator it fetched)
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repository, capture_output=True)
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repository, capture_output=True)


def run_bench(tree: Path, command: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    """The benchmark ``command`` (its script under bench/, then its arguments) from ``tree``: its figures."""
    script = tree / "bench" / command[0]
    if not script.exists():
        raise BenchError(f"{script} does not exist")
    done = subprocess.run(
        [sys.executable, str(script), *command[1:]],
        env={**env, "PYTHONPATH": str(tree)},
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"`{' '.join(command)}` from {tree} failed ({done.returncode}); its errors are above")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def alternate(args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, **stack_env()}
    runs: dict[str, dict[str, list[float]]] = {side: {m: [] for m in args.metric} for side in SIDES}
    with worktree(args.base) as base_tree:
        trees = {"base": base_tree, "head": ROOT}
        for pair, side in turns(args.pairs):
            log(f"pair {pair + 1}/{args.pairs}: {side} ({args.base if side == 'base' else 'the working tree'})")
            figures = run_bench(trees[side], args.command, env)
            for metric in args.metric:
                runs[side][metric].append(pick(figures, metric))
                log(f"  {metric} = {fmt(runs[side][metric][-1], 4)}")
    results = {
        "benchmark": "alternate",
        "base": args.base,
        "command": args.command,
        "metrics": {m: compare(runs["base"][m], runs["head"][m]) for m in args.metric},
    }
    out = RESULTS / f"alternate-{datetime.now(UTC):%Y%m%d%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"the working tree against {results['base']}, `{' '.join(results['command'])}`, runs in turn"]
    for metric, c in results["metrics"].items():
        lines.append(
            f"  {metric}: base {fmt(c['base_median'], 4)} ({', '.join(fmt(v, 4) for v in c['base'])}), "
            f"head {fmt(c['head_median'], 4)} ({', '.join(fmt(v, 4) for v in c['head'])}); "
            f"head/base {fmt(c['ratio'], 3)}, head lower in {c['head_lower']} of {c['pairs']} pairs"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the revision to compare the working tree with")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side, in turn (default 3)")
    parser.add_argument("--metric", action="append", required=True, help="a dotted path into the figures (repeat)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the benchmark's script under bench/ and options")
    args = parser.parse_args(argv)
    args.command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not args.command:
        parser.error("name the benchmark after --, e.g. -- order_entry.py --quick")
    if args.pairs < 1:
        parser.error("--pairs must be positive")
    return report(lambda: alternate(args), table, lambda results: results)


if __name__ == "__main__":
    sys.exit(main())
