"""Postgres embedded through pgserver: real PostgreSQL binaries from PyPI, data under the stack directory.

pgserver listens on a Unix socket only (no TCP port to collide with), and when run as root it runs the
server as its own unprivileged ``pgserver`` system user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import psycopg

from deploy.local.errors import StackError
from deploy.local.settings import StackSettings

with warnings.catch_warnings():
    # platformdirs warns about XDG_RUNTIME_DIR on headless machines; pgserver copes without it.
    warnings.simplefilter("ignore")
    import pgserver
    from pgserver.utils import PostmasterInfo

DATABASE = "tradecore"
_SYSTEM_USER = "pgserver" if os.geteuid() == 0 else None


def data_dir(settings: StackSettings) -> Path:
    return (settings.stack_dir / "postgres").resolve()


def running(settings: StackSettings) -> PostmasterInfo | None:
    """The postmaster serving our data directory, if one runs."""
    pgdata = data_dir(settings)
    if not pgdata.exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info if info is not None and info.is_running() else None


def url(info: PostmasterInfo) -> str:
    """SQLAlchemy URL (psycopg 3 driver) of the ``tradecore`` database over the server's socket."""
    return f"postgresql+psycopg://postgres@/{DATABASE}?host={info.socket_dir}"


def start(settings: StackSettings) -> PostmasterInfo:
    """Initialise the data directory on first use, start the server, create the ``tradecore`` database."""
    pgdata = data_dir(settings)
    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        # The constructor, unlike get_server(), does not hand back a cached handle to a server stopped since.
        pgserver.PostgresServer(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as err:
        raise StackError(
            f"Postgres did not start from {pgdata} ({err!r}); its log: {pgdata / 'log'}",
            hint="if the log names a stale postmaster.pid or a version mismatch, "
            "`tradecore stack down --purge` starts afresh",
        ) from err
    info = running(settings)
    if info is None:
        raise StackError(f"Postgres reported started but no postmaster serves {pgdata}")
    with psycopg.connect(f"postgresql://postgres@/postgres?host={info.socket_dir}", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return info


def healthy(database_url: str) -> bool:
    """Whether the database answers a query."""
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(conninfo, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def stop(settings: StackSettings, *, crash: bool = False) -> bool:
    """Fast shutdown of our server (open sessions are rolled back); whether one was running.

    ``crash``: an immediate shutdown instead — the server quits as if it had died: no shutdown checkpoint, and the WAL
    not yet flushed is lost (the next start recovers from what is on disk): what recovery tests need."""
    if running(settings) is None:
        return False
    mode = "immediate" if crash else "fast"
    pgserver.pg_ctl(["-w", "-m", mode, "stop"], pgdata=data_dir(settings), user=_SYSTEM_USER)
    return True
