"""The import graph between tradecore's packages, read from the source with ``ast`` (nothing is imported).

``python -m tests.support.imports`` prints it; tests/test_layering.py holds it to the layering of DESIGN.md.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "domain", "commands", "streams", "projections", "api", "deploy")


@functools.cache  # the layering tests ask four times about every source: each is parsed once
def imported_modules(path: Path) -> frozenset[str]:
    """Every module a source file imports, at any depth (deferred imports inside functions count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def package_graph() -> dict[str, set[str]]:
    """For each of our packages, the other packages of ours it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        graph[package]
        for path in sources(package):
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in PACKAGES and top != package:
                    graph[package].add(top)
    return dict(graph)


def importers(prefix: str) -> dict[str, set[str]]:
    """Source file (relative to the repository) -> the modules under ``prefix`` it imports."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sources(package):
            hits = {m for m in imported_modules(path) if m == prefix or m.startswith(prefix + ".")}
            if hits:
                found[str(path.relative_to(ROOT))] = hits
    return found


def main() -> None:
    for package, imports in package_graph().items():
        print(f"{package:12} -> {', '.join(sorted(imports, key=PACKAGES.index)) or '(nothing of ours)'}")


if __name__ == "__main__":
    main()
