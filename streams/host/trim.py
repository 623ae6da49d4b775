"""Handing the memory a rebuild freed back to the operating system.

A rebuild's readers fetch, buffer and decode the tail of several partitions side by side, in threads of their own
(``streams.host.runner``): at their peak they hold tens of megabytes that are freed once the tasks are live. glibc's
malloc keeps freed memory in its per-thread arenas for reuse and returns little of it by itself, so a restarted host
kept the rebuild's peak as resident memory for as long as it ran — measured on risk restarted over 61,396 records of
history: 265 to 278 MB resident once live, 190 to 208 MB after ``malloc_trim(0)`` (bench/recovery.py --memory). Trimming
once a rebuild is done makes a host's resident memory follow what its state holds, not how its last rebuild went.
Dask's workers trim for the same reason. Elsewhere than glibc (musl, macOS) there is nothing to call and nothing
is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger("tradecore.streams")


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library this process runs on, if one is found."""
    name = ctypes.util.find_library("c")
    try:
        return None if name is None else ctypes.CDLL(name)
    except OSError:
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    trim = getattr(libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    function: Callable[[int], int] = trim
    return function


def release_freed_memory() -> bool:
    """Return the heap's free pages to the operating system; whether malloc could (glibc only)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    released = bool(trim(0))
    log.debug("malloc_trim: %s", "memory released" if released else "nothing to release")
    return released
