"""Directories for stacks a test starts of its own."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A short, world-traversable directory under /tmp, removed afterwards.

    pgserver runs Postgres as its own user when we are root, so every directory above the data must stay traversable
    for that user while the server runs. pytest's own temporary root is not such a place: each pytest session that
    starts makes it private (0700) again, which locked a running test server's `pg_ctl stop` out when two sessions ran
    at once. Short, because a Unix socket's path is limited to 107 bytes."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir="/tmp") as directory:
        Path(directory).chmod(0o755)
        yield Path(directory)
