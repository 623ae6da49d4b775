"""Fetched batches of records as replay frames, decoded batch-at-a-time (``schemas.batch``), in the replay order.

The columns and values are those of ``streams.replay.rows`` (the per-record path): where the record is, the
envelope, the payload fields of every event of the topic, then ``error`` and ``raw_value`` for a record that does
not decode. Only the text of ``error`` differs: it is the batch decoder's reason, not fastavro's.

Event-time order without a merge per record: within a partition, a record's place is set by the greatest timestamp
up to it (a heap merge of partitions emits a record stamped earlier than its predecessor right after it), so the
merged order is the sort by (that running maximum, partition, offset). Rows are released once no partition still
being read can bring a row before them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence

import polars as pl

from schemas.batch import INDEX, BatchDecoder, WriterLookup
from schemas.events import events_on
from streams.host.decoding import EVENTS_OF
from streams.kafka.logreader import RawRecord
from streams.replay.rows import DECIMAL, RECORD_COLUMNS, columns

ORDER_KEY = "_order"  # the running maximum timestamp of the record's partition: its event-time place


class FrameDecoder:
    """Turns lists of raw records of one topic into frames with the topic's replay columns."""

    def __init__(self, topic: str, writers: WriterLookup) -> None:
        self.topic = topic
        self.schema = columns(topic)
        self._decoder = BatchDecoder(writers, events_on(EVENTS_OF.get(topic, topic)))

    def frame(self, raws: Sequence[RawRecord]) -> pl.DataFrame:
        """``raws`` as rows in their order, each with the event's columns, or the error and the raw value."""
        _, partitions, offsets, stamps, keys, values, _ = zip(*raws, strict=True) if raws else ((),) * 7
        decoded = self._decoder.decode(values)
        place = pl.DataFrame(
            {
                "topic": pl.Series([self.topic] * len(raws), dtype=pl.String),
                "partition": pl.Series(partitions, dtype=pl.Int32),
                "offset": pl.Series(offsets, dtype=pl.Int64),
                "timestamp": pl.Series(stamps, dtype=pl.Int64).cast(RECORD_COLUMNS["timestamp"]),
                "key": _keys(keys),
            }
        ).with_row_index(INDEX)
        parts = [self._events(found) for found in decoded.frames.values()]
        if decoded.malformed:
            bad = [item.index for item in decoded.malformed]
            parts.append(
                pl.DataFrame(
                    {
                        INDEX: pl.Series(bad, dtype=pl.UInt32),
                        "error": [item.reason for item in decoded.malformed],
                        "raw_value": [_base64(values[i]) for i in bad],
                    }
                )
            )
        if len(parts) == 1 and parts[0].height == len(raws):
            # Every record decoded, and as one event type: the decoder's rows are the batch's, in its order — put side
            # by side, not joined and sorted (1 ms of the 5 ms a 10,000-record frame took outside the decode).
            joined = pl.concat([place, parts[0].select(pl.exclude(place.columns))], how="horizontal")
        else:
            body = (
                pl.concat(parts, how="diagonal_relaxed")
                if parts
                else pl.DataFrame({INDEX: []}, schema={INDEX: pl.UInt32})
            )
            joined = place.join(body.with_columns(pl.col(INDEX).cast(pl.UInt32)), on=INDEX, how="left").sort(INDEX)
        return joined.select(
            [
                pl.col(name).cast(dtype) if name in joined.columns else pl.lit(None, dtype).alias(name)
                for name, dtype in self.schema.items()
            ]
        )

    def _events(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One event type's decoded frame as replay columns (``index`` kept to place each row)."""
        out = frame.unnest("envelope")
        converted = []
        for name, dtype in out.schema.items():
            if name == INDEX:
                converted.append(pl.col(INDEX))
            elif isinstance(dtype, pl.Decimal):
                converted.append(pl.col(name).cast(DECIMAL))
            elif isinstance(dtype, pl.List):  # a map: JSON with sorted keys, as the per-record path writes it
                converted.append(pl.col(name).map_elements(_map_json, return_dtype=pl.String))
            else:
                converted.append(pl.col(name).cast(self.schema[name]))
        return out.select(converted)


def _map_json(entries: pl.Series) -> str:
    return json.dumps(dict(sorted((e["key"], e["value"]) for e in entries.to_list())))


def _keys(keys: Sequence[bytes | None]) -> pl.Series:
    raw = pl.Series(keys, dtype=pl.Binary)
    try:
        return raw.cast(pl.String)
    except pl.exceptions.InvalidOperationError:  # a key that is not UTF-8: replaced characters, as the per-record path
        return pl.Series([None if k is None else k.decode(errors="replace") for k in keys], dtype=pl.String)


def _base64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


class TimeMerge:
    """Releases rows of several partitions in event-time order (ties by partition, then offset) as they come."""

    def __init__(self, partitions: Iterable[int]) -> None:
        self._high: dict[int, int] = dict.fromkeys(partitions, -(2**63))  # each partition's running maximum, ms
        self._seen: set[int] = set()
        self._held: list[pl.DataFrame] = []

    def add(self, frame: pl.DataFrame) -> None:
        """Take rows (in offset order per partition) and give each its place in the merged order."""
        if frame.is_empty():
            return
        stamps = frame["timestamp"].dt.epoch("ms")
        keyed = frame.with_columns(stamps.alias(ORDER_KEY))
        keyed = keyed.with_columns(pl.col(ORDER_KEY).cum_max().over("partition"))
        # Carry each partition's maximum from earlier batches into this one.
        before = pl.DataFrame(
            {"partition": list(self._high), "_before": list(self._high.values())},
            schema={"partition": pl.Int32, "_before": pl.Int64},
        )
        keyed = (
            keyed.join(before, on="partition", how="left", maintain_order="left")
            .with_columns(pl.max_horizontal(ORDER_KEY, "_before").alias(ORDER_KEY))
            .drop("_before")
        )
        last = keyed.group_by("partition").agg(pl.col(ORDER_KEY).max())
        for partition, high in last.iter_rows():
            self._high[partition] = high
            self._seen.add(partition)
        self._held.append(keyed)

    def release(self, finished: Mapping[int, bool]) -> pl.DataFrame | None:
        """The held rows no partition still being read can come before: none until each such partition has given
        a row; every row once all are finished."""
        if not self._held:
            return None
        open_ = [p for p in self._high if not finished.get(p, False)]
        if any(p not in self._seen for p in open_):
            return None
        held = pl.concat(self._held, how="vertical_relaxed")
        if open_:
            bound = min(self._high[p] for p in open_)  # every later row of those partitions is placed at or after it
            ready = held[ORDER_KEY] < bound
            out, self._held = held.filter(ready), [held.filter(~ready)]
        else:
            out, self._held = held, []
        if out.is_empty():
            return None
        return out.sort(ORDER_KEY, "partition", "offset").drop(ORDER_KEY)
