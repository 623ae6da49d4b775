"""The layering of DESIGN.md, held by the source: an import that points the wrong way fails here, not in review."""

from __future__ import annotations

import pytest

from tests.support.imports import importers, package_graph

# One worker runs these (`make unit` passes --dist loadgroup), so it parses each source once for all four of them.
pytestmark = pytest.mark.xdist_group("source-imports")

# Who may import whom. commands/ reads domain's instruments and derived ids (the write side uses the domain, as
# an application layer does); projections/ reaches Kafka only through the edge, streams.kafka.
ALLOWED = {
    "schemas": set(),
    "domain": {"schemas"},
    "commands": {"schemas", "domain"},
    "streams": {"schemas", "domain", "commands"},
    "projections": {"schemas", "domain", "streams"},
    "api": {"schemas", "domain", "commands", "streams", "projections", "deploy"},
    "deploy": {"schemas", "streams", "projections"},
}


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = {package: imports - ALLOWED[package] for package, imports in package_graph().items()}
    assert not any(wrong.values()), f"imports against the layering: { {p: w for p, w in wrong.items() if w} }"


def test_domain_is_pure() -> None:
    impure = {"confluent_kafka", "sqlalchemy", "psycopg", "fastapi", "httpx", "ccxt", "time"}
    found = {f: {m for m in mods if m.split(".")[0] in impure} for f, mods in _domain_imports().items()}
    assert not any(found.values()), (
        f"domain/ must not do I/O or read the clock: { {f: m for f, m in found.items() if m} }"
    )


def test_projections_reach_streams_only_through_the_kafka_edge() -> None:
    # And the process set-up every tradecore process shares (streams.runtime: the collector's thresholds, the log's
    # filter of repeated failures).
    outside_edge = {
        path: {m for m in modules if not any(m == edge or m.startswith(f"{edge}.") for edge in _EDGES)}
        for path, modules in importers("streams").items()
        if path.startswith("projections/")
    }
    assert not any(outside_edge.values()), outside_edge


_EDGES = ("streams.kafka", "streams.runtime")


def test_confluent_kafka_is_imported_by_the_kafka_edge_alone() -> None:
    # The registry client too: schemas/ writes the wire format with fastavro and takes the registry as a protocol.
    outside_edge = {path for path in importers("confluent_kafka") if not path.startswith("streams/kafka/")}
    assert outside_edge == set()


def _domain_imports() -> dict[str, frozenset[str]]:
    from tests.support.imports import ROOT, imported_modules, sources

    return {str(p.relative_to(ROOT)): imported_modules(p) for p in sources("domain")}
