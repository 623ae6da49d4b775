"""Readiness: whether the API can do its job now — Kafka, the schema registry and Postgres answer, and the read
models are fresh enough.

Each check runs concurrently under a timeout and reports ``ok``, ``failed`` (with why) or ``skipped`` (with why).
The projection-lag check is pluggable: until a projector is configured it is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import tables
from projections.projectors import select
from projections.runner import lag
from streams import kafka
from streams.kafka import KafkaSettings
from streams.kafka.logreader import LogReader
from streams.kafka.registry import ConfluentRegistry

Status = Literal["ok", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str


class Skipped(Exception):
    """A check that does not apply to this deployment (the reason is the message)."""


# A check answers with a detail line when the dependency is fine, raises when it is not, or raises Skipped.
Check = Callable[[], Awaitable[str]]


class Readiness:
    def __init__(
        self,
        settings: KafkaSettings,
        registry: ConfluentRegistry,
        engine: AsyncEngine,
        timeout_s: float,
        projection_lag: Check | None = None,
    ) -> None:
        self._settings = settings
        self._admin = kafka.admin(settings)
        self._registry = registry
        self._engine = engine
        self._timeout_s = timeout_s
        self._checks: dict[str, Check] = {
            "kafka": self._kafka,
            "schema_registry": self._schema_registry,
            "postgres": self._postgres,
            "projection_lag": projection_lag or _no_projector,
        }

    async def check(self) -> list[CheckResult]:
        """Every check's outcome; the API is ready when none failed."""
        return list(await asyncio.gather(*(self._run(name, check) for name, check in self._checks.items())))

    async def _run(self, name: str, check: Check) -> CheckResult:
        try:
            return CheckResult(name, "ok", await asyncio.wait_for(check(), self._timeout_s))
        except Skipped as why:
            return CheckResult(name, "skipped", str(why))
        except TimeoutError:
            return CheckResult(name, "failed", f"no answer within {self._timeout_s:g} s")
        except Exception as err:
            # The first line says what failed; drivers append statements and links below it.
            first = next(iter(str(err).splitlines()), "")
            return CheckResult(name, "failed", f"{type(err).__name__}: {first}")

    async def _kafka(self) -> str:
        topic = self._settings.topic_prefix + "orders"
        metadata = await asyncio.to_thread(self._admin.list_topics, topic, timeout=self._timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise LookupError(f"topic {topic} is not there ({found.error if found else 'unknown'})")
        return f"{len(metadata.brokers)} broker(s); {topic} has {len(found.partitions)} partitions"

    async def _schema_registry(self) -> str:
        subjects = await asyncio.to_thread(self._registry.subjects)
        return f"{len(subjects)} subjects"

    async def _postgres(self) -> str:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return "answers"


async def _no_projector() -> str:
    raise Skipped("no projector configured")


class ProjectionLag:
    """The ``projection_lag`` check: every read model within ``max_records`` of the end of the topics it folds.

    Reads the committed ``projection_checkpoints`` of the namespace's read-model schema and the partitions' ends;
    skipped (not failed) while no projection has committed a checkpoint yet — the projector may not be deployed.
    Transaction markers count as records at a partition's end, so a caught-up model may show a few.
    """

    def __init__(self, settings: KafkaSettings, engine: AsyncEngine, schema: str, max_records: int) -> None:
        self._settings = settings
        self._engine = engine
        self._schema = schema
        self._max_records = max_records
        self._projectors = select(None)
        self._reading = threading.Lock()  # probes overlap when one outlives its timeout: one uses the reader at a time
        self._reader: LogReader | None = None

    async def __call__(self) -> str:
        table = f'"{self._schema}".{tables.projection_checkpoints.name}'
        try:
            async with self._engine.connect() as conn:
                rows = (await conn.execute(text(f'SELECT projection, topic, partition, "offset" FROM {table}'))).all()
        except ProgrammingError as err:  # the schema is not there: nothing was ever projected in this namespace
            raise Skipped("no read models in this namespace yet (is `tradecore project` running?)") from err
        if not rows:
            raise Skipped("no projection has committed a checkpoint yet (is `tradecore project` running?)")
        committed: dict[str, dict[tuple[str, int], int]] = {}
        for projection, topic, partition, offset in rows:
            committed.setdefault(projection, {})[(topic, partition)] = offset
        ends = await asyncio.to_thread(self._ends)
        behind = lag(committed, ends, self._projectors)
        worst = max(behind, key=lambda name: behind[name])
        if behind[worst] > self._max_records:
            raise RuntimeError(f"{worst} is {behind[worst]} records behind (more than {self._max_records})")
        return f"every read model within {behind[worst]} records of the log ({worst} the furthest)"

    def _ends(self) -> dict[tuple[str, int], int]:
        # One reader for the API's life, its connections made once: a reader made per probe spent the 2 s budget
        # connecting on a loaded machine, and each probe that timed out left its thread and clients behind.
        with self._reading:
            if self._reader is None:
                self._reader = LogReader(self._settings, "readiness")
            topics = {t for p in self._projectors for t in p.topics}
            found = self._reader.partitions([self._settings.topic_prefix + t for t in topics])
            prefix = len(self._settings.topic_prefix)
            return {(t[prefix:], p): end for (t, p), end in self._reader.ends(found).items()}

    def close(self) -> None:
        with self._reading:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
