"""`tradecore replay`: a topic's records over a range, decoded, filtered, into a sink."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.replay.output import Sink
from streams.replay.reader import Order, TopicReader
from streams.replay.rows import RowFilter, row

BATCH = 1_000


@dataclass
class ReplaySummary:
    """What a replay did, so far: records read, rows written (after the filter), records that did not decode."""

    read: int = 0
    written: int = 0
    undecodable: int = 0


def replay(
    reader: TopicReader,
    ranges: dict[int, tuple[int, int]],
    keep: RowFilter,
    sink: Sink,
    summary: ReplaySummary,
    *,
    order: Order = Order.TIME,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Read ``ranges`` of ``reader``'s topic into ``sink``, counting into ``summary`` as it goes; when ``stop`` is
    set (Ctrl-C), end after the record in hand, with every row read so far written.

    Undecodable records are written as rows of their own (with the reason and the raw value) whatever the filter
    says about event fields, so an audit never misses one.
    """
    batch: list[dict[str, Any]] = []
    for record in reader.read(ranges, order, progress):
        if stop is not None and stop.is_set():
            break
        summary.read += 1
        found = row(record)
        if record.event is None:
            summary.undecodable += 1
        elif keep and not keep(found):
            continue
        batch.append(found)
        if len(batch) >= BATCH:
            sink.write(batch)
            summary.written += len(batch)
            batch = []
    sink.write(batch)
    summary.written += len(batch)
