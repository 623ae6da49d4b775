"""Rebuild and verify: replay the topics from offset 0 into a schema of its own, then swap it in or compare it.

Rebuild fills ``<live>__shadow`` up to where the topics ended when it started, then swaps the rebuilt tables in,
in one transaction that holds the live checkpoints' lock: the live runner waits for it, finds checkpoints that are
not the ones it wrote, and carries on from the rebuilt ones. Queries read the old tables until the swap commits
and the new ones from then on; none sees a half-built model.

Verify fills ``<live>__verify`` up to exactly the live checkpoints it read in a repeatable-read transaction, and
compares every table row for row with the live rows of that same snapshot, so it may run beside a live runner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka.schema_registry import SchemaRegistryClient
from psycopg import sql
from sqlalchemy import Engine, Table

from projections import namespace, tables
from projections.projectors import Projector
from projections.runner import Offsets, ProjectionRunner, RunnerConfig, checkpoints
from streams.settings import KafkaSettings

Progress = Callable[[int, int], None]  # (events read so far in this call, events to read in all)


def _replay(
    projectors: Sequence[Projector],
    settings: KafkaSettings,
    registry: SchemaRegistryClient,
    conninfo: str,
    schema: str,
    ends: dict[tuple[str, int], int] | None,
    stops: dict[str, Offsets] | None,
    progress: Progress | None,
    config: RunnerConfig | None,
) -> int:
    done = 0

    def batch(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    runner = ProjectionRunner(
        projectors, settings, registry, conninfo, schema, stops=stops, on_batch=batch, config=config
    )
    try:
        target = runner.ends() if ends is None else ends
        total = sum(target.values())
        if progress is not None:
            progress(0, total)
        runner.run_to(target)
    finally:
        runner.close()
    return done


def rebuild(
    projectors: Sequence[Projector],
    settings: KafkaSettings,
    registry: SchemaRegistryClient,
    engine: Engine,
    conninfo: str,
    *,
    progress: Progress | None = None,
    config: RunnerConfig | None = None,
) -> int:
    """Rebuild ``projectors``' tables from offset 0 and swap them in atomically; the number of records read."""
    live = namespace.live_schema(settings.topic_prefix)
    shadow = namespace.shadow_schema(live)
    namespace.upgrade(engine, live)
    _fresh(engine, shadow)
    read = _replay(projectors, settings, registry, conninfo, shadow, None, None, progress, config)
    _swap(conninfo, live, shadow, projectors)
    return read


def _fresh(engine: Engine, schema: str) -> None:
    """``schema`` emptied and migrated: what a replay writes into."""
    with engine.begin() as conn:
        namespace.drop(conn, schema)
    namespace.upgrade(engine, schema)


def _swap(conninfo: str, live: str, shadow: str, projectors: Sequence[Projector]) -> None:
    old = f"{live}__old"
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        # The live runner's next transaction starts by locking these rows: it waits here until the swap is done.
        conn.execute(
            sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(live, tables.projection_checkpoints.name))
        )
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(old)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(old)))
        for table in {t for p in projectors for t in p.tables}:
            conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(sql.Identifier(live, table.name), sql.Identifier(old))
            )
            conn.execute(
                sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(sql.Identifier(shadow, table.name), sql.Identifier(live))
            )
        names = [p.name for p in projectors]
        checkpoint = sql.Identifier(live, tables.projection_checkpoints.name)
        conn.execute(sql.SQL("DELETE FROM {} WHERE projection = ANY(%s)").format(checkpoint), [names])
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {} WHERE projection = ANY(%s)").format(
                checkpoint, sql.Identifier(shadow, tables.projection_checkpoints.name)
            ),
            [names],
        )
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(old)))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(shadow)))


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    live: dict[str, Any] | None  # None: the row is missing from the live table
    rebuilt: dict[str, Any] | None  # None: the live table has a row the log does not explain

    def __str__(self) -> str:
        if self.live is None:
            return f"{self.table} {self.key}: missing from the live table"
        if self.rebuilt is None:
            return f"{self.table} {self.key}: in the live table, but not in the rebuild"
        changed = {k: (v, self.rebuilt[k]) for k, v in self.live.items() if self.rebuilt.get(k) != v}
        return f"{self.table} {self.key}: " + ", ".join(
            f"{k} live {a!r} rebuilt {b!r}" for k, (a, b) in changed.items()
        )


def verify(
    projectors: Sequence[Projector],
    settings: KafkaSettings,
    registry: SchemaRegistryClient,
    engine: Engine,
    conninfo: str,
    *,
    progress: Progress | None = None,
) -> list[Difference]:
    """Every row in which the live read models differ from a rebuild up to the same checkpoints."""
    live = namespace.live_schema(settings.topic_prefix)
    scratch = namespace.scratch_schema(live)
    _fresh(engine, scratch)
    try:
        with (
            psycopg.connect(conninfo, autocommit=True, options="-c timezone=UTC") as snapshot,
            snapshot.transaction(),
        ):
            snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            stops = checkpoints(snapshot, live)
            ends: dict[tuple[str, int], int] = {}
            for offsets in stops.values():
                for tp, offset in offsets.items():
                    ends[tp] = max(ends.get(tp, 0), offset)
            _replay(projectors, settings, registry, conninfo, scratch, ends, stops, progress, None)
            with psycopg.connect(conninfo, options="-c timezone=UTC") as other:
                differences = []
                for table in [t for p in projectors for t in p.tables]:
                    differences += _compare(table, _rows(snapshot, live, table), _rows(other, scratch, table))
                return differences
    finally:
        with engine.begin() as conn:
            namespace.drop(conn, scratch)


def _rows(conn: psycopg.Connection[Any], schema: str, table: Table) -> dict[tuple[Any, ...], dict[str, Any]]:
    pk = [c.name for c in table.primary_key.columns]
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table.name)))
    return {tuple(row[c] for c in pk): row for row in cur}


def _compare(
    table: Table, live: dict[tuple[Any, ...], dict[str, Any]], rebuilt: dict[tuple[Any, ...], dict[str, Any]]
) -> list[Difference]:
    return [
        Difference(table.name, key, live.get(key), rebuilt.get(key))
        for key in sorted(live.keys() | rebuilt.keys(), key=repr)
        if live.get(key) != rebuilt.get(key)
    ]
