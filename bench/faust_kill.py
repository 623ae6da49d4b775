"""Exactly once under SIGKILL, faust-streaming beside our host (issue #4): the evidence for "why not faust".

    .venv/bin/python bench/faust_kill.py                  # 20,000 records, 5 kills, 3 runs (≈ 6 min)
    .venv/bin/python bench/faust_kill.py --quick          # 10,000 records, 3 kills, 1 run (≈ 2 min)
    .venv/bin/python bench/faust_kill.py --seed 11 --runs 5

Each run, for each system, in a fresh topic namespace ``bench-<id>-<run>-<system>.`` on the running stack:

* the same N fills are published to ``executions`` (keyed by instrument, 37 accounts, 3 instruments);
* the repartition ``executions`` -> ``executions.by-account`` (re-keyed by account, bytes unchanged) runs as a
  subprocess: ``bench/faust_repartition.py`` (faust-streaming, ``processing_guarantee="exactly_once"``) or the
  reference, ``tradecore worker executions-by-account`` (our confluent-kafka transactional host);
* it is SIGKILLed K times at random moments while it works (``tests.support.workers.run_with_kills``): each
  incarnation is killed a seeded delay of up to half a second after it first commits progress of its own, so
  every kill lands mid-stream, not in start-up (a worker that has consumed everything is killed idle); the same
  seed gives the same delays, to both systems. It is restarted after each kill and left to finish: its consumer
  group has committed the end of every input partition;
* the output is read ``read_committed`` and every record decoded: duplicates (a fill id more than once), missing
  fills, and records keyed by anything but their account; and "hidden": offsets of the output log that
  ``read_committed`` does not show (commit/abort markers, aborted records). 0 means no output was ever written
  inside a transaction.

Progress on stderr, a table on stdout, one JSON line last. The namespaces are deleted afterwards; the workers' logs
stay in the directory printed at the start.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import TopicPartition  # noqa: E402

from deploy.local.stack import Endpoints, LocalStack  # noqa: E402
from schemas.serde import EventDeserializer, register_all  # noqa: E402
from schemas.settings import RegistrySettings  # noqa: E402
from streams import kafka  # noqa: E402
from streams.kafka.registry import registry_client  # noqa: E402
from streams.kafka.topics import TopicLayout, cluster_size, delete_namespace, ensure_topics  # noqa: E402
from streams.settings import KafkaSettings  # noqa: E402
from tests.streams.test_exactly_once import publish_fills, read_committed  # noqa: E402
from tests.support.workers import run_with_kills, start_worker  # noqa: E402

FAUST_APP = Path(__file__).with_name("faust_repartition.py")
INPUT, OUTPUT = "executions", "executions.by-account"


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    system: str
    run: int
    sent: int
    out: int = 0
    duplicates: int = 0
    missing: int = 0
    wrong_key: int = 0
    hidden: int = 0  # offsets of the output log not visible read_committed: transaction markers, aborted records
    kills: int = 0
    wall_s: float = 0.0
    finished: bool = False
    error: str = ""
    consumed_at_restart: list[int] = field(default_factory=list)  # input offsets committed when each restart began


def consumed(settings: KafkaSettings, group: str) -> int:
    """Input records the group has committed (EOS: in the same transaction as their outputs).

    Asked read_uncommitted: a read_committed consumer asks for stable offsets only and waits while a killed
    worker's transaction is still open, which lasts until its successor fences it."""
    topic = settings.topic_prefix + INPUT
    probe = kafka.consumer(settings, group, **{"isolation.level": "read_uncommitted"})
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.partitions)]
        return sum(max(tp.offset, 0) for tp in probe.committed(parts, timeout=30))
    finally:
        probe.close()


def log_size(settings: KafkaSettings, topic: str) -> int:
    probe = kafka.consumer(settings, f"{settings.topic_prefix}probe")
    try:
        marks = [probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in range(settings.partitions)]
        return sum(high - low for low, high in marks)
    finally:
        probe.close()


def start_faust(endpoints: Endpoints, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(FAUST_APP), "worker", "--without-web", "-l", "info"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def one(system: str, run: int, args: argparse.Namespace, endpoints: Endpoints, logs: Path, tag: str) -> Outcome:
    settings = KafkaSettings(bootstrap_servers=endpoints.kafka_bootstrap, topic_prefix=f"bench-{tag}-{run}-{system}.")
    prefix = settings.topic_prefix
    admin = kafka.admin(settings)
    ensure_topics(admin, TopicLayout.for_cluster(cluster_size(admin), settings.partitions), prefix)
    client = registry_client(RegistrySettings(url=endpoints.schema_registry_url))
    register_all(client, prefix)
    result = Outcome(system, run, args.records)
    try:
        publish_fills(settings, client, args.records)
        log = logs / f"{run}-{system}.log"
        group = prefix + ("faust-executions-by-account" if system == "faust" else "executions-by-account")

        def start() -> subprocess.Popen[bytes]:
            result.consumed_at_restart.append(consumed(settings, group))
            say(f"  {system}: (re)start with {result.consumed_at_restart[-1]:,} of {args.records:,} consumed")
            if system == "faust":
                return start_faust(endpoints, prefix, log)
            return start_worker(endpoints, prefix, ["executions-by-account"], log)

        # Kill i at a seeded delay (up to half a second) after this incarnation has committed something of its
        # own: mid-stream, not during start-up (or, once all is consumed, idle); the same delays for both systems.
        def working(_kill: int) -> bool:
            now = consumed(settings, group)
            return now > result.consumed_at_restart[-1] or now >= args.records

        done: Callable[[], bool] = lambda: consumed(settings, group) >= args.records  # noqa: E731
        started = time.monotonic()
        try:
            result.kills = run_with_kills(
                start,
                done,
                kills=args.kills,
                interval_s=(0.0, 0.5),
                seed=args.seed + run,
                timeout_s=args.timeout,
                working=working,
            )
            result.finished = True
        except AssertionError as err:  # run_with_kills: the worker died on its own, or never finished
            result.error = f"{err} (log: {log})"
        result.wall_s = time.monotonic() - started
        result.consumed_at_restart.pop(0)  # the first start is no restart

        records = read_committed(settings, prefix + OUTPUT)
        decode = EventDeserializer(client, INPUT, topic_prefix=prefix)
        fills = [(key, decode.deserialize(value)) for key, value in records]
        ids = Counter(getattr(fill, "fill_id") for _, fill in fills)  # noqa: B009 - OrderFilled's
        result.out = len(records)
        result.hidden = log_size(settings, prefix + OUTPUT) - len(records)
        result.duplicates = sum(n - 1 for n in ids.values())
        result.missing = sum(1 for i in range(args.records) if f"f-{i}" not in ids)
        result.wrong_key = sum(1 for key, fill in fills if key.decode() != getattr(fill, "account_id"))  # noqa: B009
    finally:
        delete_namespace(admin, prefix)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000, help="Fills published per run and system.")
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs per run and system.")
    parser.add_argument("--runs", type=int, default=3, help="Repetitions (run r uses seed + r).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the kill schedule.")
    parser.add_argument("--timeout", type=float, default=300, help="Seconds a run may take before it counts as stuck.")
    parser.add_argument("--systems", default="faust,tradecore", help="Comma-separated: faust, tradecore.")
    parser.add_argument("--quick", action="store_true", help="10,000 records, 3 kills, one run.")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.kills, args.runs = 10_000, 3, 1
    endpoints = LocalStack().up(report=lambda _l: None)
    tag = uuid.uuid4().hex[:6]
    logs = Path(tempfile.mkdtemp(prefix=f"faust-kill-{tag}-"))
    say(f"run {tag}: {args.records:,} records, {args.kills} kills, {args.runs} runs, seed {args.seed}; logs in {logs}")

    outcomes: list[Outcome] = []
    for run in range(args.runs):
        for system in args.systems.split(","):
            say(f"run {run + 1}/{args.runs}, {system}")
            outcome = one(system, run, args, endpoints, logs, tag)
            say(
                f"  {system}: {outcome.out:,} out, {outcome.duplicates} duplicates, {outcome.missing} missing, "
                f"{outcome.kills} kills, {outcome.wall_s:.0f} s{'; ' + outcome.error if outcome.error else ''}"
            )
            outcomes.append(outcome)

    print(
        f"\nexactly once under SIGKILL, run {tag}: {args.records:,} fills, {args.kills} kills per run, seed {args.seed}"
    )
    header = (
        f"{'system':<10}{'run':>4}{'out':>8}{'dupl.':>7}{'missing':>8}{'wrong key':>10}{'hidden':>7}{'kills':>6}"
        f"{'wall s':>8}"
    )
    print(header + "  consumed at each restart / outcome")
    for o in outcomes:
        restarts = ", ".join(f"{n:,}" for n in o.consumed_at_restart)
        print(
            f"{o.system:<10}{o.run:>4}{o.out:>8,}{o.duplicates:>7}{o.missing:>8}{o.wrong_key:>10}{o.hidden:>7,}{o.kills:>6}"
            f"{o.wall_s:>8.0f}  {restarts}{' / ' + o.error if o.error else ''}"
        )
    summary = {}
    for system in args.systems.split(","):
        mine = [o for o in outcomes if o.system == system]
        summary[system] = {
            "runs": len(mine),
            "clean_runs": sum(1 for o in mine if o.finished and not (o.duplicates or o.missing or o.wrong_key)),
            "duplicates": sum(o.duplicates for o in mine),
            "missing": sum(o.missing for o in mine),
            "wrong_key": sum(o.wrong_key for o in mine),
            "kills": sum(o.kills for o in mine),
            "median_wall_s": round(statistics.median(o.wall_s for o in mine), 1),
        }
        s = summary[system]
        print(
            f"{system:<10}{'all':>4}{'':>8}{s['duplicates']:>7}{s['missing']:>8}{s['wrong_key']:>10}{'':>7}{s['kills']:>6}"
            f"{s['median_wall_s']:>8.0f}  {s['clean_runs']}/{s['runs']} runs exactly once (median wall time)"
        )
    print(
        json.dumps(
            {
                "run": tag,
                "records": args.records,
                "kills": args.kills,
                "runs": args.runs,
                "seed": args.seed,
                "summary": summary,
                "outcomes": [asdict(o) for o in outcomes],
            },
            separators=(",", ":"),
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
