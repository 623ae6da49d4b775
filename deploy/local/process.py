"""Detached child processes that outlive the CLI and are recognised again by pid *and* command line."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil


@dataclass(frozen=True)
class ProcessRecord:
    """A process the stack started; its command line guards against the pid being reused by another program.

    Not its start time: Linux reports a process's start time as its distance from boot added to the wall clock's
    *current* idea of the boot time, so an adjustment of the clock (NTP) moves it. `tradecore stack down` once took a
    running Kafka and registry for other programs that way, left them running, and the next `stack up` found their
    ports taken. ``create_time`` is kept for records written before ``argv`` was, which it still identifies, and for
    the instant after spawning when the kernel reports an empty command line (``spawn`` returns as soon as
    ``execve`` closed the child's close-on-exec pipe, before the new program's arguments are laid out).
    """

    name: str
    pid: int
    create_time: float
    log: str
    argv: tuple[str, ...] = ()

    def live(self) -> psutil.Process | None:
        """The process if it is still the one we started and has not exited."""
        return self._inspect()[0]

    def gone(self) -> str | None:
        """Why ``live`` finds nothing (for an error message), or None while the process runs."""
        return self._inspect()[1]

    def _inspect(self) -> tuple[psutil.Process | None, str | None]:
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None, f"pid {self.pid} has exited"
            # A process in the middle of execve reads an empty command line; just spawned, its start time is sure.
            cmdline = tuple(proc.cmdline()) if self.argv else ()
            if cmdline:
                if cmdline != self.argv:
                    return None, f"pid {self.pid} runs another command: {' '.join(cmdline)[:200]}"
            elif abs(proc.create_time() - self.create_time) > 0.5:
                return None, f"pid {self.pid} is another process (started at another time)"
            return proc, None
        except psutil.NoSuchProcess:
            return None, f"pid {self.pid} has exited"
        except psutil.Error as err:
            return None, f"pid {self.pid} cannot be inspected: {err}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        return cls(
            name=data["name"],
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            log=data["log"],
            argv=tuple(data.get("argv", ())),
        )


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
    except (ValueError, OSError):  # not privileged: as far as the hard limit goes
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    open_files: int | None = None,
) -> ProcessRecord:
    """Start ``argv`` in its own session, output appended to ``log``, detached from this process.

    ``open_files``: raise the child's limit of open files towards this (as far as the hard limit lets an
    unprivileged user; root may raise the hard limit too).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,
            preexec_fn=None if open_files is None else lambda: _raise_open_files(open_files),
        )
    return ProcessRecord(
        name=name,
        pid=child.pid,
        create_time=psutil.Process(child.pid).create_time(),
        log=str(log),
        argv=tuple(argv),
    )


def terminate(records: Sequence[ProcessRecord], *, grace_s: float = 30.0, alone_s: float | None = None) -> list[str]:
    """SIGTERM every live process (its whole session), SIGKILL what is left after ``grace_s``; names stopped.

    ``alone_s``: when several were stopped, the last one still running this long after every other has exited is
    SIGKILLed then — a cluster's node whose shutdown waits on peers that have gone (``stack.LocalStack.down``).
    """
    live = {record.name: proc for record in records if (proc := record.live()) is not None}
    procs: list[psutil.Process] = []
    for proc in live.values():
        procs.append(proc)
        procs.extend(proc.children(recursive=True))
        proc.send_signal(signal.SIGTERM)
    roots = set(live.values())
    deadline = time.monotonic() + grace_s
    alone_since: float | None = None
    alive = procs
    while alive and time.monotonic() < deadline:
        _, alive = psutil.wait_procs(alive, timeout=min(0.2, max(0.0, deadline - time.monotonic())))
        if alone_s is None or len(roots) < 2 or len(roots.intersection(alive)) != 1:
            continue
        alone_since = alone_since if alone_since is not None else time.monotonic()
        if time.monotonic() - alone_since >= alone_s:
            break
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return sorted(live)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def describe_listener(port: int) -> str:
    """Who listens on ``port``, as far as this user may see: 'pid 123 (java)' or 'an unknown process'."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except psutil.Error:
        pass
    return "an unknown process"


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
