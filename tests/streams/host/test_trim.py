"""What a rebuild frees goes back to the operating system: the heap's free pages are released, not kept resident."""

from __future__ import annotations

import psutil

from streams.host.trim import release_freed_memory

MB = 2**20


def test_memory_freed_below_a_live_allocation_leaves_the_resident_set_once_released() -> None:
    process = psutil.Process()
    # 100,000 buffers of 2 kB come from malloc (not Python's small-object allocator); one allocated after them keeps
    # the heap's top in place, so freeing them cannot shrink the heap by itself: their pages stay resident.
    buffers = [bytearray(2048) for _ in range(100_000)]
    above = bytearray(2048)
    del buffers
    freed = process.memory_info().rss
    assert release_freed_memory()
    released = process.memory_info().rss
    assert freed - released > 100 * MB, f"{freed / MB:.0f} MB resident after freeing, {released / MB:.0f} MB after"
    assert len(above) == 2048
