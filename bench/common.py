"""What every benchmark under bench/ shares: progress on stderr, medians over repeats, the CPU each component used
on this shared 2-core machine, a guard that waits for other processes to go quiet, the stack check, and the
clean-up of a run's topic namespace.

Run the benchmarks from the repository root as scripts (``.venv/bin/python bench/<name>.py``); each puts the root
first on ``sys.path`` so ``bench`` imports as a package. No module here is named after one of tradecore's packages
(``processors.py``, ``read_models.py``): bench/ first on the path would shadow it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import io
import json
import os
import platform
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from confluent_kafka import Consumer, TopicPartition

from deploy import launch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TRADECORE = launch.TRADECORE
INSTALL_VEGETA = ROOT / "bench" / "install_vegeta.sh"

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on; the message says what to do."""


# --- statistics ---------------------------------------------------------------------------------------------------


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median and min-max of repeated runs (None values, e.g. a run that produced nothing, are left out)."""
    found = [v for v in values if v is not None]
    if not found:
        return {"median": None, "min": None, "max": None, "runs": list(values)}
    return {
        "median": statistics.median(found),
        "min": min(found),
        "max": max(found),
        "runs": [None if v is None else round(v, 4) for v in values],
    }


def percentiles_ms(latencies_s: np.ndarray) -> dict[str, float | None]:
    if latencies_s.size == 0:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None, "mean_ms": None}
    p50, p99, p999 = (float(x) for x in np.percentile(latencies_s, [50, 99, 99.9], method="higher") * 1000)
    return {
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(latencies_s.max() * 1000),
        "mean_ms": float(latencies_s.mean() * 1000),
    }


# --- CPU accounting -----------------------------------------------------------------------------------------------


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``pid`` and its descendants, by pid."""
    times: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return times
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            times[proc.pid] = t.user + t.system
    return times


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / hz, total / hz


@dataclass
class CpuWindow:
    """Cores used by each component while a measurement ran (1.0 = one core fully busy)."""

    roots: dict[str, list[int]]  # component -> root pids (their descendants count too)
    loadgen: str = "vegeta"  # "vegeta": the waited-for child process; "bench": this process
    result: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CpuWindow:
        self._t0 = time.monotonic()
        self._start = {name: self._sample(pids) for name, pids in self.roots.items()}
        self._machine0 = _machine_busy_s()[0]
        self._children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._self0 = resource.getrusage(resource.RUSAGE_SELF)
        return self

    @staticmethod
    def _sample(pids: list[int]) -> dict[int, float]:
        out: dict[int, float] = {}
        for pid in pids:
            out.update(tree_cpu(pid))
        return out

    def __exit__(self, *exc: object) -> None:
        elapsed = max(1e-9, time.monotonic() - self._t0)
        for name, pids in self.roots.items():
            end = self._sample(pids)
            used = sum(t - self._start[name].get(pid, 0.0) for pid, t in end.items())
            self.result[name] = used / elapsed
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        child_s = (children.ru_utime + children.ru_stime) - (self._children0.ru_utime + self._children0.ru_stime)
        self_s = (me.ru_utime + me.ru_stime) - (self._self0.ru_utime + self._self0.ru_stime)
        self.result["loadgen"] = (child_s if self.loadgen == "vegeta" else self_s) / elapsed
        if self.loadgen == "vegeta":
            self.result["bench"] = self_s / elapsed
        machine = (_machine_busy_s()[0] - self._machine0) / elapsed
        self.result["machine"] = machine
        self.result["other"] = max(0.0, machine - sum(v for k, v in self.result.items() if k != "machine"))
        self.result = {k: round(v, 3) for k, v in self.result.items()}


class Guard:
    """This machine is shared (other sessions run tests against the same stack): wait until processes that are not
    part of the measurement are quiet before each measurement, and repeat one they disturbed.

    "Foreign" CPU is the machine's busy time minus the stack's, the API server's, vegeta's and this process's.
    """

    def __init__(self, roots: dict[str, list[int]], limit: float, wait_s: float, retries: int) -> None:
        self.roots = roots  # updated in place when a server starts or stops
        self.limit = limit
        self.wait_s = wait_s
        self.retries = retries
        self.disturbed = 0  # measurements kept although foreign load exceeded the limit

    def foreign_cores(self, seconds: float = 1.0) -> float:
        with CpuWindow(self.roots, loadgen="bench") as cpu:
            time.sleep(seconds)
        return cpu.result["other"]

    def wait_quiet(self) -> None:
        deadline = time.monotonic() + self.wait_s
        quiet = 0
        announced = False
        while time.monotonic() < deadline:
            foreign = self.foreign_cores()
            quiet = quiet + 1 if foreign <= self.limit else 0
            if quiet >= 2:
                return
            if not announced and foreign > self.limit:
                log(f"  waiting for other processes to go quiet ({foreign:.2f} cores busy outside the benchmark)")
                announced = True
        log(f"  the machine did not go quiet within {self.wait_s:.0f} s; measuring anyway (flagged)")

    def run(self, label: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``measure()`` (its result has a "cpu" entry) on a quiet machine; repeated when foreign load disturbed it."""
        for attempt in range(1, self.retries + 2):
            self.wait_quiet()
            out = measure()
            foreign = out["cpu"]["other"]
            out["attempt"] = attempt
            out["disturbed"] = foreign > self.limit
            if not out["disturbed"]:
                return out
            again = attempt <= self.retries
            log(
                f"  {label}: other processes used {foreign:.2f} cores meanwhile; "
                + ("measuring again" if again else "kept, flagged as disturbed")
            )
        self.disturbed += 1
        return out


class LogCount:
    """Records in a topic (sum of its partitions' high watermarks): what was really appended."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})

    def __call__(self, topic: str) -> int:
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)

    def close(self) -> None:
        self._consumer.close()


def check_stack() -> dict[str, list[int]]:
    """The stack's processes by component; BenchError when a component is not answering."""
    from deploy.local.stack import LocalStack

    rows = LocalStack().status()
    down = [row.name for row in rows if not row.ok]
    if down:
        raise BenchError(f"the local stack is not up ({', '.join(down)}) → run `.venv/bin/tradecore stack up`")
    roots: dict[str, list[int]] = {}
    for row in rows:
        if row.pid:
            roots.setdefault(row.name.split("-")[0], []).append(row.pid)
    return roots


def tradecore(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(TRADECORE), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"`tradecore {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cleanup(prefix: str) -> None:
    """Delete what this run put in the shared stack: its topics, its registry subjects, its read-model schema, its
    write-side rows (as `tradecore topics delete` does)."""
    from api import namespaces
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams.settings import KafkaSettings

    log(f"cleaning up the run's topics, subjects, rows and read-model schema ({prefix}*); --keep keeps them")
    where = KafkaSettings(), RegistrySettings(), DatabaseSettings()
    try:
        namespaces.delete_all(namespaces.survey(prefix, *where), *where)
    except Exception as err:  # best effort: report, do not hide the results
        log(f"  could not delete all of it: {err}")


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_spread(stat: dict[str, Any], digits: int = 0) -> str:
    """median (min-max)"""
    if stat["median"] is None:
        return "-"
    if stat["min"] == stat["max"]:
        return fmt(stat["median"], digits)
    return f"{fmt(stat['median'], digits)} ({fmt(stat['min'], digits)}-{fmt(stat['max'], digits)})"


def fmt_ms(stat: dict[str, Any]) -> str:
    """A latency's median (min-max), to a precision that suits its size."""
    median = stat["median"]
    return fmt_spread(stat, 0 if median is None or median >= 100 else 1 if median >= 10 else 2)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def target_lines(targets: dict[str, Any], names: dict[str, str] | None = None, width: int = 40) -> list[str]:
    """One line per issue target: the target, what was measured, met or MISSED."""
    lines = []
    for key, target in targets.items():
        met = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        digits = 2 if isinstance(target["target"], float) else 0
        lines.append(
            f"  {(names or {}).get(key, key):<{width}} target {fmt(target['target'], digits):>9}  "
            f"measured {fmt(target['measured'], digits):>9}  {met}"
        )
    return lines


def report(
    run: Callable[[], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    compact: Callable[[dict[str, Any]], dict[str, Any]],
) -> int:
    """Run a benchmark; the table on stdout, then its figures as one JSON line; errors on stderr. SIGTERM (`timeout`,
    a supervisor) stops it as Ctrl-C does, so that what it started (API servers, workers) is stopped too."""

    def terminated(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        results = run()
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(table(results))
    print(json.dumps(compact(results), default=str, separators=(",", ":")))
    return 0


def add_run_options(
    parser: argparse.ArgumentParser, *, quick: str, limit: float, retries: int, wait_s: float | None
) -> None:
    """What every benchmark takes: repetitions, the smoke mode (``quick`` says what it does), keeping the run's
    namespace, and the options of ``Guard`` (how much foreign load a measurement tolerates, what is done about more).
    """
    parser.add_argument("--repeat", type=int, default=None, help="repetitions of every measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--keep", action="store_true", help="keep the run's topics, subjects and rows afterwards")
    parser.add_argument(
        "--quiet-limit",
        type=float,
        default=limit,
        help=f"cores other processes may use during a measurement before it is repeated (default {limit:g})",
    )
    parser.add_argument(
        "--retries", type=int, default=retries, help=f"repeats of a measurement others disturbed (default {retries})"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=wait_s, help="longest wait for a quiet machine before each, seconds"
    )


# --- the API server, the load generator and the namespace of a run -----------------------------------------------


class ApiServer:
    """``tradecore api`` as its own process group, started and stopped by this benchmark only."""

    def __init__(self, workers: int, env: dict[str, str], run_dir: Path) -> None:
        self.workers = workers
        self._env = env
        self.log_path = run_dir / f"api-workers{workers}.log"
        self.service: launch.Service | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return None if self.service is None else self.service.process

    @property
    def url(self) -> str:
        assert self.service is not None, "the API server is not started"
        return self.service.url

    def start(self) -> None:
        log(f"starting `tradecore api --workers {self.workers}`")
        try:
            self.service = launch.start_api(
                self.log_path, self._env, options=["--workers", str(self.workers)], timeout_s=180, own_session=True
            )
        except launch.LaunchError as err:
            raise BenchError(f"the API server did not start:\n{err}") from err
        log(f"the API server answers /readyz at {self.url}")
        # With several workers each one runs its own start-up (imports, registry, Kafka); wait until all are idle.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            children = psutil.Process(self.service.process.pid).children()
            if len(children) >= self.workers or self.workers == 1:
                break
            time.sleep(0.25)
        self.settle()

    def settle(self, quiet_cores: float = 0.05, limit_s: float = 60) -> None:
        """Wait until the server is idle (no work left over from the previous measurement)."""
        assert self.proc is not None
        deadline = time.monotonic() + limit_s
        before = sum(tree_cpu(self.proc.pid).values())
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = sum(tree_cpu(self.proc.pid).values())
            if (now - before) / 0.5 < quiet_cores:
                return
            before = now

    def token(self, user: str, password: str) -> str:
        answer = httpx.post(f"{self.url}/v1/auth/token", data={"username": user, "password": password}, timeout=30)
        if answer.status_code != 200:
            raise BenchError(f"login of {user} failed: {answer.status_code} {answer.text}")
        return str(answer.json()["access_token"])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.service is None or not self.service.running():
            return
        log(f"stopping the API server (pid {self.service.process.pid})")
        self.service.stop(30)  # then SIGKILL to the group this benchmark created for the server


@dataclass
class Vegeta:
    binary: str
    run_dir: Path

    def attack(
        self,
        name: str,
        lines: Iterable[bytes],
        targets: int,
        *,
        rate: int,
        duration: float,
        workers: int,
        max_workers: int,
        cpu_roots: dict[str, list[int]],
        ok: int = 202,
    ) -> dict[str, Any]:
        """One attack: ``rate`` requests/s open loop (0: closed loop with ``workers`` in flight) for ``duration``,
        over ``targets`` lines of vegeta's JSON targets format (``post_targets``, ``get_targets``); a request counts
        as accepted when it answers ``ok``. Tokens go in the targets (``post_targets``, ``get_targets``), never in
        vegeta's command line, which any user of the machine can read."""
        targets_file = self.run_dir / f"{name}.targets"
        results_file = self.run_dir / f"{name}.bin"
        # Only this user may read it: the targets carry bearer tokens.
        with os.fdopen(os.open(targets_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            written = 0
            for line in lines:
                out.write(line + b"\n")
                written += 1
        assert written == targets
        command = [
            self.binary,
            "attack",
            "-format=json",
            f"-targets={targets_file}",
            f"-rate={rate}/1s" if rate else "-rate=0",
            f"-duration={duration}s",
            f"-workers={workers}",
            f"-max-workers={max_workers}",
            "-timeout=10s",
            "-max-body=0",
            "-http2=false",
            "-keepalive=true",
            f"-name={name}",
            f"-output={results_file}",
            "-header",
            "Content-Type: application/json",
        ]
        with CpuWindow(cpu_roots, loadgen="vegeta") as cpu:
            done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"vegeta attack failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
        encoded = subprocess.run(
            [self.binary, "encode", "--to", "csv", str(results_file)], capture_output=True, check=True
        ).stdout.decode()
        targets_file.unlink()
        results_file.unlink()
        return summarize_attack(encoded, targets, ok) | {"cpu": cpu.result}


def post_targets(url: str, bodies: Iterable[bytes], token: str | None = None) -> Iterator[bytes]:
    """vegeta targets: a POST of each body to ``url``, with ``token`` as its bearer token when given."""
    header = f',"header":{{"Authorization":["Bearer {token}"]}}' if token else ""
    prefix = f'{{"method":"POST","url":"{url}"{header},"body":"'.encode()
    return (prefix + base64.b64encode(body) + b'"}' for body in bodies)


def get_targets(requests: Iterable[tuple[str, str]]) -> Iterator[bytes]:
    """vegeta targets: a GET of each ``(url, bearer token)``."""
    for url, token in requests:
        yield json.dumps({"method": "GET", "url": url, "header": {"Authorization": [f"Bearer {token}"]}}).encode()


def summarize_attack(encoded_csv: str, targets: int, ok_status: int = 202) -> dict[str, Any]:
    starts, latencies, codes = [], [], []
    errors: Counter[str] = Counter()
    for row in csv.reader(io.StringIO(encoded_csv)):
        if not row:
            continue
        starts.append(int(row[0]))
        codes.append(int(row[1]))
        latencies.append(int(row[2]))
        if int(row[1]) != ok_status:
            errors[f"{row[1]} {row[5][:80]}".strip()] += 1
    if not starts:
        return {"sent": 0, "accepted": 0, "errors": 0, "error_kinds": {}}
    start_ns = np.array(starts, dtype=np.int64)
    latency_ns = np.array(latencies, dtype=np.int64)
    ok = np.array(codes) == ok_status
    first = int(start_ns.min())
    send_span = max(1e-9, (int(start_ns.max()) - first) / 1e9)
    span = max(1e-9, (int((start_ns + latency_ns).max()) - first) / 1e9)
    return {
        "sent": len(starts),
        "accepted": int(ok.sum()),
        "errors": int((~ok).sum()),
        "error_kinds": dict(errors.most_common(5)),
        "sent_per_s": float(len(starts) / send_span),
        "accepted_per_s": float(ok.sum() / span),
        "targets_exhausted": len(starts) > targets,
        **percentiles_ms(latency_ns / 1e9),
    }


@contextlib.contextmanager
def py_spy(pid: int, seconds: int, out: Path) -> Iterator[Callable[[], bool]]:
    """py-spy on ``pid`` and its subprocesses (GIL-holding samples, collapsed stacks to ``out``) while the body runs
    (at most ``seconds`` + 2 s); yields a function saying, once the body is done, whether the profile was written."""
    binary = Path(sys.executable).with_name("py-spy")
    if not binary.exists():
        log("  --profile: py-spy is not installed (it is a dev dependency: uv pip install -e '.[dev]'); skipped")
        yield lambda: False
        return
    log(f"  profiling pid {pid} with py-spy for {seconds} s -> {out}")
    spy = subprocess.Popen(
        [
            *(str(binary), "record", "--pid", str(pid), "--subprocesses", "--gil", "--nonblocking"),
            *("--rate", "100", "--format", "raw", "--duration", str(seconds + 2), "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1)  # py-spy attaches
    written: list[bool] = []
    try:
        yield lambda: bool(written and written[0])
    finally:
        _, err = spy.communicate(timeout=120)
        if spy.returncode != 0 or not out.exists():
            log(f"  py-spy failed ({spy.returncode}): {err.decode(errors='replace').strip()[-300:]}")
        written.append(spy.returncode == 0 and out.exists())


@dataclass(frozen=True)
class BenchRun:
    """One run of a benchmark: its id, its topic namespace ``bench-<id>.``, its scratch directory under
    bench/results/, and the stack's processes by component (checked to be up)."""

    run_id: str
    prefix: str
    run_dir: Path
    stack_roots: dict[str, list[int]]

    @classmethod
    def begin(cls, benchmark: str) -> BenchRun:
        os.chdir(ROOT)  # settings read .stack/env relative to the working directory
        run_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
        run_dir = RESULTS / f"{benchmark}-{run_id}"
        run_dir.mkdir(parents=True, exist_ok=True)
        return cls(run_id, f"bench-{run_id}.", run_dir, check_stack())

    @property
    def users_file(self) -> Path:
        return self.run_dir / "users.toml"

    def env(self) -> dict[str, str]:
        return namespace_env(self.prefix, self.users_file)

    def finish(self, keep: bool) -> None:
        """Delete what the run put in the shared stack (unless ``keep``) and its users' passwords."""
        if not keep:
            cleanup(self.prefix)
        with contextlib.suppress(OSError):
            self.users_file.unlink()

    def save(self, results: dict[str, Any]) -> dict[str, Any]:
        (self.run_dir / "results.json").write_text(json.dumps(results, indent=2, default=str))
        return results


def namespace_env(prefix: str, users_file: Path) -> dict[str, str]:
    """The environment of a run's processes: its topic namespace, a fresh JWT secret, its users, no rate limits
    in the way of the load (they are per account / per user and per worker)."""
    return {
        **os.environ,
        "TRADECORE_TOPIC_PREFIX": prefix,
        "TRADECORE_JWT_SECRET": secrets.token_hex(32),
        "TRADECORE_USERS_FILE": str(users_file),
        "TRADECORE_RATE_LIMIT": "1000000/second",
        "TRADECORE_TICKS_RATE_LIMIT": "1000000/second",
        "TRADECORE_TOKEN_TTL_S": "14400",
    }


def prepare_namespace(env: dict[str, str]) -> None:
    """The write-side tables and the namespace's topics, as an operator prepares them before starting services."""
    log("tradecore db upgrade; tradecore topics ensure")
    tradecore(env, "db", "upgrade")
    tradecore(env, "topics", "ensure")


def install_vegeta() -> str:
    done = subprocess.run([str(INSTALL_VEGETA)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"could not install the load generator:\n{done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


# --- where the server's time goes (py-spy) -------------------------------------------------------------------------

# Each sample is charged to the first rule matching a frame, scanning from the innermost frame outwards.
PROFILE_RULES: list[tuple[str, tuple[str, ...]]] = [
    ("JWT verify (PyJWT HS256, api.auth)", ("jwt/", "Authenticator.verify")),
    ("per-account rate limiter (limits)", ("limits/", "RateLimiter")),
    (
        "Avro serialize (codec, AvroSerializer, fastavro)",
        ("schemas/serde.py", "schemas/codec.py", "schemas/batch/records.py", "schema_registry", "fastavro"),
    ),
    ("Kafka produce + delivery reports (eventlog)", ("streams/eventlog.py", "confluent_kafka")),
    ("Postgres driver (psycopg)", ("psycopg/", "psycopg_")),
    (
        "SQLAlchemy (statement build, compile cache, asyncio/greenlet) + api.store",
        ("sqlalchemy/", "api/store.py", "greenlet"),
    ),
    (
        "request JSON + pydantic validation / serialization",
        ("pydantic", "request_body_to_args", "_validate_value", "json/"),
    ),
    ("domain: validate, decide, fingerprint (commands)", ("commands/",)),
    ("threadpool hops for sync dependencies (anyio, threading)", ("anyio/", "threading.py", "queue.py", "concurrent/")),
    ("FastAPI dependency resolution (api.deps)", ("solve_dependencies", "api/deps.py")),
    (
        "HTTP protocol (uvicorn + httptools, api.http_protocol)",
        ("uvicorn/protocols", "httptools", "api/http_protocol.py"),
    ),
    (
        "the API's request handling (order entry's front, bodies, metrics)",
        ("api/order_entry.py", "api/place_route.py", "api/place_body.py", "api/bodies.py", "api/telemetry.py"),
    ),
    # The event loop's own time (uvloop's, in C) shows as asyncio's Runner.run innermost: not uvicorn's below it.
    ("event loop, asyncio and the rest", ("asyncio/",)),
    ("FastAPI/Starlette routing, middleware, responses", ("fastapi/", "starlette/", "api/routers", "uvicorn/")),
]


def profile_shares(collapsed: Path, rules: list[tuple[str, tuple[str, ...]]] = PROFILE_RULES) -> dict[str, float]:
    """Share of samples per category of ``rules`` in py-spy's raw (collapsed-stack) output."""
    counts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")
        category = "event loop, asyncio and the rest"
        for frame in reversed(frames):
            hit = next((name for name, marks in rules if any(m in frame for m in marks)), None)
            if hit is not None:
                category = hit
                break
        counts[category] += int(n)
    total = sum(counts.values()) or 1
    return {name: round(n / total, 4) for name, n in counts.most_common()} | {"samples": total}


def profiled(
    pid: int, out: Path, seconds: int, guard: Guard, measure: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, float]] | None:
    """``measure()`` on a quiet machine under py-spy (``pid`` and its subprocesses): its result and the share of
    GIL-holding samples per PROFILE_RULES category; None when py-spy is missing or failed."""
    guard.wait_quiet()
    with py_spy(pid, seconds, out) as spied:
        measured = measure()
    if not spied():
        return None
    return measured, profile_shares(out)


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An ASGI HTTP scope as uvicorn gives an app one, for benches that call the app's ASGI callable directly."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
