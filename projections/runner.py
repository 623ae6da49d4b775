"""The projection runner: reads the topics, and writes each batch's rows with the projectors' checkpoints in one
Postgres transaction, so a crash anywhere leaves neither a duplicate nor a gap.

Checkpoints are compare-and-set: each transaction first locks the projections' checkpoint rows and checks they
still say what this runner last wrote. If they do not — a rebuild swapped new tables in, or another runner got
there first — the batch is dropped and the runner carries on from what the database says. So a runner never
writes on top of rows it did not read, whoever else touched them.

The runner keeps no state but the checkpoints: a fold loads the rows a batch touches, so a restart (or a lost
Postgres connection) just resumes from the committed checkpoints.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg import sql

from projections import live, metrics, namespace, tables
from projections.projectors import Projector, Record, Writer
from schemas.batch import INDEX, BatchDecoder
from schemas.batch.registry import writers
from schemas.events import events_on
from schemas.registry import SchemaRegistry
from streams.kafka import KafkaSettings, producer, tracing
from streams.kafka.logreader import LogEndUnknown, LogReader, RawRecord

log = logging.getLogger("tradecore.projections")

TopicPartition = tuple[str, int]  # (topic without prefix, partition)
Offsets = dict[TopicPartition, int]


class _Moved(Exception):
    """The checkpoints are not what this runner last wrote: start again from the database's."""


@dataclass
class RunnerStats:
    events: int = 0
    batches: int = 0
    dead_lettered: int = 0
    restarts: int = 0
    by_projection: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunnerConfig:
    batch_max: int = 5000  # records per transaction at most
    poll_s: float = 0.05  # how long a read waits for more records
    # How long a batch may wait to fill up: a transaction and a decode cost about as much for ten records as for
    # thousands, so catching up goes in full batches; a lone record waits this long at most.
    linger_s: float = 0.02
    # The same under a trickle (the batch before was not full), where it sets the batches a second: at 100 orders/s
    # (bench/dashboard.py) the projector took 0.51 cores at 20 ms, most of it the fixed costs of each batch's
    # queries; at 100 ms (the processors' own batch_ms) the whole pipeline took 0.58 cores instead of 0.79. Not while
    # catching up: the last batch of a backlog would wait it out for records that are not coming.
    trickle_linger_s: float = 0.1


class ProjectionRunner:
    """Runs ``projectors`` over one namespace's topics into ``schema``.

    ``stops`` (per projection, per partition) bounds what each projector reads: verify rebuilds up to exactly the
    live checkpoints.
    """

    def __init__(
        self,
        projectors: Sequence[Projector],
        settings: KafkaSettings,
        registry: SchemaRegistry,
        conninfo: str,
        schema: str,
        *,
        config: RunnerConfig | None = None,
        stops: Mapping[str, Offsets] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.projectors = list(projectors)
        self.settings = settings
        self.schema = schema
        self.config = config or RunnerConfig()
        self._trickle = False  # whether the last batch polled was not full: records trickle in, no backlog
        self.stats = RunnerStats()
        self._counted: dict[str, int] = {}  # rows already added to the rows metric, per projection
        self._conninfo = conninfo
        self._stops = stops
        self._on_batch = on_batch
        self._prefix = settings.topic_prefix
        self._topics = sorted({t for p in self.projectors for t in p.topics})
        lookup = writers(registry)
        self._decoders = {t: BatchDecoder(lookup, events_on(t)) for t in self._topics}
        self._positions: dict[str, Offsets] = {}
        # The live schema's runner feeds GET /v1/stream; a rebuild's or a verify's (shadow, scratch) feeds no one.
        self._live = schema == namespace.live_schema(self._prefix)
        self._conn: psycopg.Connection[Any] | None = None
        # Batches are written by a thread of their own while the next one is read and decoded: Postgres's COPY and
        # commit are mostly waiting, decoding mostly not. One batch at a time is in writing, in log order.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projection-writer")
        self._writing: Future[None] | None = None
        self._assigned = False
        self._reader = LogReader(settings, f"{self._prefix}projections")
        self._dead_letters = producer(settings)
        self.partitions: list[TopicPartition] = [
            (t[len(self._prefix) :], p) for t, p in self._reader.partitions(self._prefix + t for t in self._topics)
        ]

    # -- running -----------------------------------------------------------------------------------------------
    def run(
        self, stop: threading.Event, report: Callable[[str], None] | None = None, report_every_s: float = 10.0
    ) -> None:
        """Project until ``stop`` is set; every ``report_every_s`` tell ``report`` the rate and each lag."""
        self._resume()
        last, counted = time.monotonic(), self.stats.events
        while not stop.is_set():
            self._step()
            if report is not None and time.monotonic() - last >= report_every_s:
                self._settle()  # the lag is read from the checkpoints the writer moves
                rate = (self.stats.events - counted) / (time.monotonic() - last)
                report(f"{self.stats.events:,} records, {rate:,.0f}/s; lag {self._lag_line()}")
                last, counted = time.monotonic(), self.stats.events
        self._settle()

    def run_to(self, ends: Mapping[TopicPartition, int]) -> None:
        """Project until every partition has been read up to ``ends`` (e.g. where the topics ended at the start)."""
        self._resume()
        full = {(self._prefix + t, p): o for (t, p), o in ends.items()}
        # Read to the ends, then see the last batch written: a write that failed sends the reader back.
        while not self._reader.reached(full) or not self._settle():
            self._step()

    def _lag_line(self) -> str:
        """Each read model's lag, or why it is unknown: a report, never a reason to stop projecting."""
        try:
            behind = lag(self._positions, self.ends(), self.projectors)
        except LogEndUnknown as err:
            return f"unknown for now ({err})"
        return ", ".join(f"{k} {v:,}" for k, v in behind.items())

    def ends(self) -> dict[TopicPartition, int]:
        """Where each partition the projectors read ends now."""
        return _unprefixed(self._prefix, self._reader.ends((self._prefix + t, p) for t, p in self.partitions))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.close()
        self._dead_letters.flush(30)
        if self._conn is not None:
            self._conn.close()

    # -- one batch -----------------------------------------------------------------------------------------------
    def _poll(self) -> list[RawRecord]:
        """Up to ``batch_max`` records: what comes within ``poll_s``, topped up for at most ``linger_s`` (or
        ``trickle_linger_s`` when the batch before was not full)."""
        config = self.config
        raw = self._reader.batch(config.batch_max, config.poll_s)
        deadline = time.monotonic() + (config.trickle_linger_s if self._trickle else config.linger_s)
        while raw and len(raw) < config.batch_max and time.monotonic() < deadline:
            more = self._reader.batch(config.batch_max - len(raw), max(0.0, deadline - time.monotonic()))
            if not more:
                break
            raw += more
        self._trickle = len(raw) < config.batch_max
        return raw

    def _step(self) -> None:
        raw = self._poll()
        if not raw:
            self._settle()
            return
        batch = self._decode(raw)
        if self._settle():
            self._writing = self._writer.submit(self._write, batch)

    def _settle(self) -> bool:
        """Wait for the batch being written. False if it was not: the checkpoints moved under this runner or Postgres
        failed, and the reader is back at the committed checkpoints (what was read beyond them is read again)."""
        writing, self._writing = self._writing, None
        if writing is None:
            return True
        try:
            writing.result()
        except _Moved:
            self.stats.restarts += 1
            log.warning("checkpoints in %s moved under this runner: carrying on from the database's", self.schema)
            self._resume()
            return False
        except psycopg.OperationalError as err:
            self.stats.restarts += 1
            log.warning("Postgres failed (%s): reconnecting, then resuming from the committed checkpoints", err)
            self._disconnect()
            self._resume()
            return False
        return True

    def _decode(self, raw: Sequence[RawRecord]) -> _Batch:
        """The batch's events, decoded topic by topic in one call each; a record that does not decode is
        dead-lettered when the batch is written (and checkpointed like the others)."""
        topics = [msg.topic[len(self._prefix) :] for msg in raw]
        batch = _Batch(
            raw,
            np.array(topics, dtype=object),
            np.fromiter((msg.partition for msg in raw), dtype=np.int64, count=len(raw)),
            np.fromiter((msg.offset for msg in raw), dtype=np.int64, count=len(raw)),
        )
        for topic, decoder in self._decoders.items():
            places = np.flatnonzero(batch.topics == topic)
            if not len(places):
                continue
            decoded = decoder.decode([raw[i].value for i in places.tolist()])
            batch.undecodable += [
                (raw[int(places[item.index])], f"undecodable: {item.reason}") for item in decoded.malformed
            ]
            for event, frame in decoded.frames.items():  # an event is written to one topic only
                at = places[frame[INDEX].to_numpy()]
                batch.frames[event] = (
                    frame.with_columns(pl.Series(INDEX, at))
                    .insert_column(1, pl.lit(topic).alias("topic"))
                    .insert_column(2, pl.Series("partition", batch.partitions[at], dtype=pl.Int32))
                    .insert_column(3, pl.Series("offset", batch.offsets[at]))
                )
        return batch

    def _write(self, batch: _Batch) -> None:
        conn = self._connection()
        raw = batch.raw

        def reject(record: Record, reason: str) -> None:
            self._dead_letter(batch.find(record.topic, record.partition, record.offset), reason)

        advanced: dict[str, Offsets] = {}
        # One span per record folded, continuing the trace its writer started (the HTTP command's): a placed order's
        # journey ends here. Ended once the batch is committed.
        spans = (
            [tracing.consuming(f"project {msg.topic[len(self._prefix) :]}", msg.headers, msg.partition, msg.offset)
             for msg in raw]
            if tracing.recording()
            else []
        )  # fmt: skip
        for msg, reason in batch.undecodable:
            self._dead_letter(msg, reason)
        with conn.transaction():
            self._check_checkpoints(conn)
            writer = Writer(conn, self.schema, reject, collect=self._live)
            for projector in self.projectors:
                mine = self._positions.setdefault(projector.name, {})
                stops = None if self._stops is None else self._stops.get(projector.name, {})
                moved, taken = batch.select(projector.topics, mine, stops)
                if not moved:
                    continue
                frames = {
                    event: frame.filter(pl.Series(taken[frame[INDEX].to_numpy()]))
                    for event, frame in batch.frames.items()
                    if event in projector.events
                }
                frames = {event: frame for event, frame in frames.items() if not frame.is_empty()}
                projector.project(frames, writer)
                advanced[projector.name] = moved
                self.stats.by_projection[projector.name] = self.stats.by_projection.get(projector.name, 0) + sum(
                    frame.height for frame in frames.values()
                )
            self._save_checkpoints(conn, advanced)
            if writer.changed is not None:
                live.publish(
                    conn,
                    self.schema,
                    writer.changed,
                    writer.appended or {},
                    prune=self.stats.batches % live.PRUNE_EVERY == 0,
                )
            # Dead letters are out before the rows commit: a crash may repeat one, never lose one.
            self._dead_letters.flush(30)
        for span in spans:
            span.end()
        for name, moved in advanced.items():
            self._positions[name].update(moved)
        self._observe(raw, advanced)
        self.stats.events += len(raw)
        self.stats.batches += 1
        if self._on_batch is not None:
            self._on_batch(len(raw))

    def _observe(self, batch: Sequence[RawRecord], advanced: Mapping[str, Offsets]) -> None:
        """Rows per projection, and how far behind the log (in event time) each one is after this batch."""
        newest = max((raw.timestamp_ms for raw in batch), default=None)
        for name in advanced:
            metrics.PROJECTION_ROWS.labels(name).inc(self.stats.by_projection.get(name, 0) - self._counted.get(name, 0))
            self._counted[name] = self.stats.by_projection.get(name, 0)
            if newest is not None:
                metrics.PROJECTION_LAG.labels(name).set(max(0.0, time.time() - newest / 1000))

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def _table(self) -> sql.Composable:
        return sql.Identifier(self.schema, tables.projection_checkpoints.name)

    def _load_checkpoints(self, conn: psycopg.Connection[Any], lock: bool) -> dict[str, Offsets]:
        statement = sql.SQL('SELECT projection, topic, partition, "offset" FROM {} WHERE projection = ANY(%s)').format(
            self._table()
        )
        if lock:
            statement = statement + sql.SQL(" FOR UPDATE")
        found: dict[str, Offsets] = {p.name: {} for p in self.projectors}
        for projection, topic, partition, offset in conn.execute(statement, [[p.name for p in self.projectors]]):
            found[projection][(topic, partition)] = offset
        return found

    def _check_checkpoints(self, conn: psycopg.Connection[Any]) -> None:
        # One writer per projection at a time, even before its first checkpoint row exists (a zombie runner
        # and its replacement): the second waits here, then finds checkpoints it did not write.
        for name in sorted(p.name for p in self.projectors):
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{self.schema}.{name}"])
        found = self._load_checkpoints(conn, lock=True)
        for name, offsets in found.items():
            if offsets != self._positions.get(name, {}):
                raise _Moved(name)

    def _save_checkpoints(self, conn: psycopg.Connection[Any], advanced: Mapping[str, Offsets]) -> None:
        rows = [(name, t, p, o) for name, moved in advanced.items() for (t, p), o in moved.items()]
        if not rows:
            return
        values = sql.SQL(", ").join(sql.SQL("(%s, %s, %s, %s, now())") for _ in rows)
        conn.execute(
            sql.SQL(
                'INSERT INTO {} (projection, topic, partition, "offset", updated_at) VALUES {} '
                'ON CONFLICT (projection, topic, partition) DO UPDATE SET "offset" = EXCLUDED."offset", '
                "updated_at = EXCLUDED.updated_at"
            ).format(self._table(), values),
            [v for row in rows for v in row],
        )

    def _resume(self) -> None:
        """Read the committed checkpoints and read each partition from the earliest any projector needs."""
        while True:
            try:
                conn = self._connection()
                with conn.transaction():
                    self._positions = self._load_checkpoints(conn, lock=False)
                break
            except psycopg.OperationalError as err:
                log.warning("Postgres is not answering (%s); retrying in 1 s", err)
                self._disconnect()
                time.sleep(1)
        starts = {
            (self._prefix + t, p): min(self._positions[proj.name].get((t, p), 0) for proj in self._readers_of(t))
            for t, p in self.partitions
        }
        if self._assigned:
            self._reader.seek(starts)
        else:
            self._reader.assign(starts)
            self._assigned = True

    def _readers_of(self, topic: str) -> Iterable[Projector]:
        return [p for p in self.projectors if topic in p.topics]

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # synchronous_commit off: a commit returns before its WAL reaches the disk (Postgres flushes it within
            # 3 x wal_writer_delay, 0.6 s). A Postgres crash may then undo the last transactions — rows and checkpoints
            # together, each transaction being atomic — and the runner, its connection lost (or its compare-and-set
            # finding the checkpoints behind its own), resumes from the database's checkpoints: those records are
            # read again from Kafka. The read models lose nothing (tests/projections/test_projections.py, crashed);
            # the waits for the disk at each commit went (order_events 79 -> 86-90k events/s, fills 90 -> 101k;
            # bench/read_models.py).
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, options="-c timezone=UTC -c synchronous_commit=off"
            )
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _dead_letter(self, msg: RawRecord, reason: str) -> None:
        headers = [
            ("tradecore.source.topic", msg.topic.encode()),
            ("tradecore.source.partition", str(msg.partition).encode()),
            ("tradecore.source.offset", str(msg.offset).encode()),
            ("tradecore.processor", b"projections"),
            ("tradecore.reason", reason.encode()[:4000]),
        ]
        self._dead_letters.produce(
            self._prefix + "deadletter", key=msg.key, value=msg.value, headers=headers, timestamp=msg.timestamp_ms
        )
        self.stats.dead_lettered += 1
        log.warning("dead-lettered %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason)


@dataclass
class _Batch:
    """A polled batch: the records, where each one is (as arrays), and its events decoded, per event type."""

    raw: Sequence[RawRecord]
    topics: np.ndarray  # without the prefix
    partitions: np.ndarray
    offsets: np.ndarray
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # ``projectors.columns``'s frames
    undecodable: list[tuple[RawRecord, str]] = field(default_factory=list)  # and why

    def select(self, topics: Iterable[str], starts: Offsets, stops: Offsets | None) -> tuple[Offsets, np.ndarray]:
        """For a projector of ``topics`` checkpointed at ``starts`` (and bounded by ``stops``): where each of its
        partitions moves to, and which records of the batch it is to be given."""
        moved: Offsets = {}
        taken = np.zeros(len(self.raw), dtype=bool)
        for topic in topics:
            mine = self.topics == topic
            for partition in np.unique(self.partitions[mine]).tolist():
                here = mine & (self.partitions == partition)
                keep = here & (self.offsets >= starts.get((topic, partition), 0))
                if stops is not None:
                    keep &= self.offsets < stops.get((topic, partition), 0)
                if keep.any():
                    moved[(topic, partition)] = int(self.offsets[keep].max()) + 1
                    taken |= keep
        return moved, taken

    def find(self, topic: str, partition: int, offset: int) -> RawRecord:
        """The record at that place of the batch."""
        [at] = np.flatnonzero((self.topics == topic) & (self.partitions == partition) & (self.offsets == offset))
        return self.raw[int(at)]


def ends_of(settings: KafkaSettings, topics: Iterable[str]) -> dict[TopicPartition, int]:
    """Where each partition of ``topics`` (named without the prefix) ends now."""
    prefix = settings.topic_prefix
    reader = LogReader(settings, f"{prefix}projections")
    try:
        return _unprefixed(prefix, reader.ends(reader.partitions(prefix + t for t in topics)))
    finally:
        reader.close()


def _unprefixed(prefix: str, found: Mapping[tuple[str, int], int]) -> dict[TopicPartition, int]:
    return {(t[len(prefix) :], p): o for (t, p), o in found.items()}


def checkpoints(conn: psycopg.Connection[Any], schema: str) -> dict[str, Offsets]:
    """Every projection's committed checkpoints in ``schema``."""
    found: dict[str, Offsets] = {}
    statement = sql.SQL('SELECT projection, topic, partition, "offset" FROM {}').format(
        sql.Identifier(schema, tables.projection_checkpoints.name)
    )
    for projection, topic, partition, offset in conn.execute(statement):
        found.setdefault(projection, {})[(topic, partition)] = offset
    return found


def lag(
    committed: Mapping[str, Offsets], ends: Mapping[TopicPartition, int], projectors: Iterable[Projector]
) -> dict[str, int]:
    """Records each projection has still to read: the sum over its partitions of end minus checkpoint.

    Transaction markers count as records here (Kafka gives them offsets), so a caught-up projection may show a
    lag of a few markers until its next batch; readiness checks should allow for that.
    """
    return {
        p.name: sum(max(0, end - committed.get(p.name, {}).get(tp, 0)) for tp, end in ends.items() if tp[0] in p.topics)
        for p in projectors
    }
