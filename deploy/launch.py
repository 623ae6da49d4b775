"""Starting `tradecore api`, `worker` and `project` as subprocesses and waiting until each is ready: the one launcher
the demo, the backtest, the tests and the benchmarks share.

Ready means what an orchestrator would check: the API answers ``GET /readyz`` with 200 (Kafka, the registry and
Postgres answer, the namespace's topics exist); a worker or the projector listens on its ``/metrics`` port (it
opens it before it joins its consumer groups, docs/OBSERVABILITY.md). Ports are checked to be held by *our* process:
another program on the machine may take a port between our check and our bind, and answer in its place.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from deploy.local.process import tail
from schemas.errors import TradecoreError

TRADECORE = Path(sys.executable).with_name("tradecore")
PORT_TRIES = 5


class LaunchError(TradecoreError):
    """A service stopped on start, or was not ready in time."""


@dataclass
class Service:
    """A `tradecore` subprocess this program started: its name, process, log and (when it serves one) port."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        """Raise if the service has exited."""
        if not self.running():
            raise LaunchError(
                f"the {self.name} stopped (exit {self.process.returncode}):\n{tail(self.log)}", hint=f"see {self.log}"
            )

    def stop(self, grace_s: float = 60) -> None:
        """SIGTERM (a worker commits what is in flight, uvicorn drains), SIGKILL after ``grace_s``."""
        stop(self.process, grace_s)


def start(
    name: str,
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    cwd: Path | None = None,
    own_session: bool = False,
) -> Service:
    """``tradecore <command>`` with ``env`` over this process's environment, its output appended to ``log``.

    ``own_session``: in a process group of its own, so that a stop can kill its children too (uvicorn's workers)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(TRADECORE), *command],
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )
    return Service(name, process, log)


def stop(process: subprocess.Popen[bytes], grace_s: float = 60) -> None:
    """SIGTERM, then SIGKILL (to its whole group when it leads one) if it has not exited after ``grace_s``."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(10)


def free_port(start: int = 20000, stop: int = 32000) -> int:
    """A port nobody listens on now, picked at random in [start, stop) so that concurrent runs rarely collide."""
    for _ in range(200):
        port = random.randrange(start, stop)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LaunchError(f"no free port between {start} and {stop}")


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` itself listens on TCP ``port`` (not some other process that took the port)."""
    try:
        connections = psutil.Process(pid).net_connections("tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def wait_listening(service: Service, port: int, timeout_s: float) -> None:
    """Return once the service's own process listens on ``port``; raise if it exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not listening(service.process.pid, port):
        service.check()
        if time.monotonic() > deadline:
            raise LaunchError(f"the {service.name} did not listen on port {port} within {timeout_s:.0f} s")
        time.sleep(0.2)


def wait_ready(service: Service, timeout_s: float) -> None:
    """Return once the API answers ``GET /readyz`` with 200; raise naming the failing checks after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    said = "no answer"
    while True:
        service.check()
        with contextlib.suppress(httpx.TransportError):
            answer = httpx.get(f"{service.url}/readyz", timeout=5)
            if answer.status_code == 200:
                return
            said = f"{answer.status_code} {answer.text}"
        if time.monotonic() > deadline:
            raise LaunchError(
                f"the {service.name} was not ready within {timeout_s:.0f} s: {said}", hint=f"see {service.log}"
            )
        time.sleep(0.25)


def _lost_the_port(service: Service, since: int) -> bool:
    """Whether the service exited because another process took its port first (as its log says after ``since``)."""
    with service.log.open("rb") as log:
        log.seek(since)
        said = log.read().decode(errors="replace")
    return not service.running() and "address already in use" in said.lower()


def start_on_port(
    name: str,
    command: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    port_option: str,
    port: int | None = None,
    ready: bool = False,
    timeout_s: float = 90,
    own_session: bool = False,
) -> Service:
    """Start ``tradecore <command> <port_option> PORT`` and return once its own process listens on PORT (and, with
    ``ready``, answers ``/readyz``). Without ``port``, a free one is picked, and picked again if another process
    takes it first."""
    for _ in range(1 if port is not None else PORT_TRIES):
        chosen = port if port is not None else free_port()
        since = log.stat().st_size if log.exists() else 0  # the log is appended to: read only this try's lines
        service = start(name, [*command, port_option, str(chosen)], log, env, own_session=own_session)
        service.port = chosen
        try:
            wait_listening(service, chosen, timeout_s)
            if ready:
                wait_ready(service, timeout_s)
            return service
        except LaunchError:
            service.stop(10)
            if port is not None or not _lost_the_port(service, since):
                raise
    raise LaunchError(f"no free port for the {name} after {PORT_TRIES} tries", hint=f"see {log}")


def start_api(
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    options: Sequence[str] = (),
    timeout_s: float = 90,
    own_session: bool = False,
) -> Service:
    """`tradecore api` (with ``options``), returned once ``/readyz`` answers 200."""
    return start_on_port(
        "API",
        ["api", *options],
        log,
        env,
        port_option="--port",
        port=port,
        ready=True,
        timeout_s=timeout_s,
        own_session=own_session,
    )


def start_worker(
    log: Path,
    env: Mapping[str, str] | None = None,
    *,
    names: Sequence[str] = (),
    options: Sequence[str] = (),
    metrics_port: int | None = None,
    timeout_s: float = 90,
) -> Service:
    """`tradecore worker` (``names``: processors, default all), returned once it serves ``/metrics``."""
    command = ["worker", *names, *options]
    return start_on_port(
        "worker", command, log, env, port_option="--metrics-port", port=metrics_port, timeout_s=timeout_s
    )


def start_projector(
    log: Path, env: Mapping[str, str] | None = None, *, metrics_port: int | None = None, timeout_s: float = 90
) -> Service:
    """`tradecore project`, returned once it serves ``/metrics`` (opened before it migrates its schema and joins its
    group: an API's ``/readyz`` says when the read models are there)."""
    return start_on_port(
        "projector", ["project"], log, env, port_option="--metrics-port", port=metrics_port, timeout_s=timeout_s
    )
