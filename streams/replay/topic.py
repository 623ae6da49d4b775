"""`tradecore replay`: a topic's records over a range, decoded, filtered, into a sink."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from streams.replay.output import Sink
from streams.replay.reader import Order, TopicReader
from streams.replay.rows import RowFilter

SLICE = 1_000  # rows written between two looks at ``stop``


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
    set (Ctrl-C), end within ``SLICE`` rows, with every row read so far written.

    Each fetched batch is decoded at once into a frame (``TopicReader.frames``) and filtered as columns.
    Undecodable records are written as rows of their own (with the reason and the raw value) whatever the filter
    says about event fields, so an audit never misses one.
    """
    wanted = keep.expression()
    for found in reader.frames(ranges, order, progress):
        for piece in found.iter_slices(SLICE):
            summary.read += piece.height
            summary.undecodable += piece.height - piece["error"].null_count()
            kept = piece.filter(pl.col("error").is_not_null() | wanted)
            sink.write(kept)
            summary.written += kept.height
            if stop is not None and stop.is_set():
                return
