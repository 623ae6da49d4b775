"""Rebuild and verify: replay the topics from offset 0 into a schema of its own, then swap it in or compare it.

Rebuild fills ``<live>__shadow`` up to where the topics ended when it started, then swaps the rebuilt tables in,
in one transaction that holds the live checkpoints' lock: the live runner waits for it, finds checkpoints that are
not the ones it wrote, and carries on from the rebuilt ones. Queries read the old tables until the swap commits
and the new ones from then on; none sees a half-built model.

Verify fills ``<live>__verify`` up to exactly the live checkpoints it read in a repeatable-read transaction, and
compares every table row for row with the live rows of that same snapshot, so it may run beside a live runner.

Both replay read models that share no topic in processes of their own, one per core at most: a Python runner
keeps one core busy decoding and folding. Each process writes its own projections' rows and checkpoints into the
same schema; the swap or the comparison starts once every one of them is done.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine, Table

from projections import namespace, tables
from projections.errors import ProjectionError
from projections.projectors import Projector, select
from projections.runner import Offsets, ProjectionRunner, RunnerConfig, TopicPartition, checkpoints, ends_of
from schemas.settings import RegistrySettings
from streams.kafka import KafkaSettings
from streams.kafka.registry import registry_client
from streams.runtime import tune_collector

Progress = Callable[[int, int], None]  # (events read so far in this call, events to read in all)

# A spawned process takes a second or two to import what it runs: below this many records a replay stays in one.
PARALLEL_FROM = 50_000


@dataclass(frozen=True)
class _Into:
    """What every process of a replay reads with and writes into."""

    settings: KafkaSettings
    registry: RegistrySettings
    conninfo: str
    schema: str
    config: RunnerConfig | None


@dataclass(frozen=True)
class _Part:
    """What one process of a replay projects: projectors whose topics no other part reads, up to ``ends``."""

    names: list[str]
    ends: dict[TopicPartition, int]
    stops: dict[str, Offsets] | None


def _replay(
    projectors: Sequence[Projector],
    settings: KafkaSettings,
    registry: RegistrySettings,
    conninfo: str,
    schema: str,
    ends: dict[TopicPartition, int] | None,
    stops: dict[str, Offsets] | None,
    progress: Progress | None,
    config: RunnerConfig | None,
    workers: int | None,
) -> int:
    """Project ``projectors`` into ``schema`` up to ``ends`` (where the topics end now when None); records read.

    Projectors that share no topic run in up to ``workers`` processes of their own (default: one per core once
    there are ``PARALLEL_FROM`` records): each record is still decoded once, and a replay of every read model uses
    the cores a single Python runner cannot.
    """
    topics = sorted({t for p in projectors for t in p.topics})
    if ends is None:
        ends = ends_of(settings, topics)
    total = sum(o for (t, _), o in ends.items() if t in topics)
    if progress is not None:
        progress(0, total)
    if workers is None:
        workers = (os.cpu_count() or 1) if total >= PARALLEL_FROM else 1
    parts = [
        _Part(
            [p.name for p in group],
            {tp: o for tp, o in ends.items() if tp[0] in {t for p in group for t in p.topics}},
            None if stops is None else {p.name: stops.get(p.name, {}) for p in group},
        )
        for group in _spread(_unconnected(projectors), ends, workers)
    ]
    into = _Into(settings, registry, conninfo, schema, config)
    if len(parts) == 1:
        return _replay_part(parts[0], into, progress, total)
    return _in_processes(parts, into, progress, total)


def _unconnected(projectors: Sequence[Projector]) -> list[list[Projector]]:
    """``projectors`` in groups no two of which read a topic in common."""
    groups: list[tuple[set[str], list[Projector]]] = []
    for projector in projectors:
        joined = [g for g in groups if g[0] & set(projector.topics)]
        merged = (
            set(projector.topics).union(*(t for t, _ in joined)),
            [p for _, members in joined for p in members] + [projector],
        )
        groups = [g for g in groups if g not in joined] + [merged]
    return [members for _, members in groups]


def _spread(groups: list[list[Projector]], ends: dict[TopicPartition, int], workers: int) -> list[list[Projector]]:
    """``groups`` packed into ``workers`` parts at most, the largest first into the part with the fewest records."""

    def size(group: list[Projector]) -> int:
        topics = {t for p in group for t in p.topics}
        return sum(o for (t, _), o in ends.items() if t in topics)

    parts: list[tuple[int, list[Projector]]] = []
    for group in sorted(groups, key=size, reverse=True):
        if len(parts) < workers:
            parts.append((size(group), list(group)))
        else:
            least = min(range(len(parts)), key=lambda i: parts[i][0])
            parts[least] = (parts[least][0] + size(group), parts[least][1] + group)
    return [members for _, members in parts]


def _replay_part(part: _Part, into: _Into, progress: Progress | None, total: int) -> int:
    done = 0

    def batch(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    runner = ProjectionRunner(
        select(part.names),
        into.settings,
        registry_client(into.registry),
        into.conninfo,
        into.schema,
        stops=part.stops,
        on_batch=batch,
        config=into.config,
    )
    try:
        runner.run_to(part.ends)
    finally:
        runner.close()
    return done


def _in_processes(parts: list[_Part], into: _Into, progress: Progress | None, total: int) -> int:
    # Spawned, not forked: the parent may hold librdkafka's threads and open connections.
    context = multiprocessing.get_context("spawn")
    reports: multiprocessing.Queue[tuple[str, int, Any]] = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(i, part, into, reports),
            name=f"replay-{'+'.join(part.names)}",
            daemon=True,
        )
        for i, part in enumerate(parts)
    ]
    for worker in workers:
        worker.start()
    done: dict[int, int] = {}  # records read so far, per worker
    read, finished = 0, set[int]()
    try:
        while len(finished) < len(workers):
            try:
                kind, index, value = reports.get(timeout=1)
            except queue.Empty:
                lost = [w for i, w in enumerate(workers) if i not in finished and w.exitcode is not None]
                if lost:
                    raise ProjectionError(
                        f"{lost[0].name} exited with code {lost[0].exitcode} before it was done"
                    ) from None
                continue
            if kind == "batch":
                done[index] = value
                if progress is not None:
                    progress(sum(done.values()), total)
            elif kind == "done":
                finished.add(index)
                read += value
            else:
                raise pickle.loads(value)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
            worker.join()
    return read


def _worker(index: int, part: _Part, into: _Into, reports: multiprocessing.Queue[tuple[str, int, Any]]) -> None:
    tune_collector()  # a spawned process: nothing of the parent's set-up
    try:
        read = _replay_part(part, into, lambda done, _: reports.put(("batch", index, done)), 0)
    except Exception as err:  # handed to the parent, which raises it
        try:
            failure = pickle.dumps(err)
            pickle.loads(failure)
        except Exception:
            failure = pickle.dumps(ProjectionError(f"{type(err).__name__}: {err}"))
        reports.put(("failed", index, failure))
        return
    reports.put(("done", index, read))


def rebuild(
    projectors: Sequence[Projector],
    settings: KafkaSettings,
    registry: RegistrySettings,
    engine: Engine,
    conninfo: str,
    *,
    progress: Progress | None = None,
    config: RunnerConfig | None = None,
    workers: int | None = None,
) -> int:
    """Rebuild ``projectors``' tables from offset 0 and swap them in atomically; the number of records read.

    ``workers``: processes at most (see ``_replay``). Processes are spawned: a script that calls this must guard its
    own work with ``if __name__ == "__main__":``, since each process imports the script's module again."""
    live = namespace.live_schema(settings.topic_prefix)
    shadow = namespace.shadow_schema(live)
    namespace.upgrade(engine, live)
    _fresh(engine, shadow)
    read = _replay(projectors, settings, registry, conninfo, shadow, None, None, progress, config, workers)
    _swap(conninfo, live, shadow, projectors)
    return read


def _fresh(engine: Engine, schema: str) -> None:
    """``schema`` emptied and migrated: what a replay writes into."""
    with engine.begin() as conn:
        namespace.drop(conn, schema)
    namespace.upgrade(engine, schema)


def _swap(conninfo: str, live: str, shadow: str, projectors: Sequence[Projector]) -> None:
    old = namespace.old_schema(live)
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
    registry: RegistrySettings,
    engine: Engine,
    conninfo: str,
    *,
    progress: Progress | None = None,
    workers: int | None = None,
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
            _replay(projectors, settings, registry, conninfo, scratch, ends, stops, progress, None, workers)
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
