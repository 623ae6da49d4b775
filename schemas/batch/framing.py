"""The Confluent wire format of a batch of record values: magic byte 0, 4-byte big-endian schema id, Avro body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from schemas.batch.wire import PAD, Bytes, Ints

MAGIC = 0
HEADER = 5


@dataclass(frozen=True)
class Framed:
    """A batch of values laid end to end, each value's body located and its schema id read."""

    data: bytes  # the values end to end, then zero padding for reads past the end
    padded: Bytes  # the same bytes as an array
    binary: pl.Series  # the buffer as a one-element binary column, for slicing strings out of it
    body_starts: Ints
    ends: Ints
    schema_ids: Ints  # -1 where the value is not framed
    reasons: dict[int, str]  # index -> why the value is not framed


def split(values: Sequence[bytes | None]) -> Framed:
    """Locate the body and schema id of every value; values too short or without the magic byte get a reason."""
    if None in values:
        values = [value or b"" for value in values]  # a tombstone is as empty as it gets
    present: Sequence[bytes] = values  # type: ignore[assignment]
    lengths = np.fromiter(map(len, present), dtype=np.int64, count=len(present))
    buffer = b"".join(present)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    data = buffer + bytes(PAD)
    raw = np.frombuffer(data, dtype=np.uint8)
    header = raw[np.minimum(starts[:, None] + np.arange(HEADER), len(raw) - 1)]
    schema_ids = header[:, 1:].astype(np.int64) @ (256 ** np.arange(3, -1, -1, dtype=np.int64))
    short = lengths <= HEADER
    unmagic = ~short & (header[:, 0] != MAGIC)
    reasons: dict[int, str] = {}
    for index in np.flatnonzero(short).tolist():  # malformed records only
        reasons[index] = (
            f"{lengths[index]} bytes is too short for the Confluent wire format (magic byte, 4-byte schema id, "
            "Avro body)"
        )
    for index in np.flatnonzero(unmagic).tolist():
        reasons[index] = f"first byte is {header[index, 0]:#04x}, not the Confluent magic byte 0x00"
    schema_ids = np.where(short | unmagic, -1, schema_ids)
    return Framed(data, raw, pl.Series([buffer], dtype=pl.Binary), starts + HEADER, ends, schema_ids, reasons)
