"""Where replayed rows go: JSON lines to a stream, or a CSV or Parquet file written with polars.

Rows arrive as frames, one per batch; CSV is appended frame by frame, Parquet is written once at the end (polars
writes a whole frame; the batches are kept as they came meanwhile). ``close`` writes what was read
so far, so an interrupted replay still leaves a valid file of the rows before the interruption.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TextIO

import polars as pl

from streams.replay.errors import ReplayError
from streams.replay.rows import json_line


class Sink(Protocol):
    def write(self, rows: pl.DataFrame) -> None: ...

    def close(self) -> None: ...


class JsonLines:
    """One JSON object per line, flushed per batch (``--out -``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, rows: pl.DataFrame) -> None:
        self._stream.writelines(json_line(r) + "\n" for r in rows.iter_rows(named=True))
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class CsvFile:
    """A CSV file with a header row; decimals written in full, times in ISO 8601."""

    def __init__(self, path: Path, schema: Mapping[str, pl.DataType]) -> None:
        self._schema = schema
        self._file = path.open("w", newline="")
        self._header = True

    def write(self, rows: pl.DataFrame) -> None:
        if not rows.is_empty():
            rows.write_csv(self._file, include_header=self._header)
            self._header = False

    def close(self) -> None:
        if self._header:  # no rows: still a header, so the file says what it would hold
            pl.DataFrame(schema=dict(self._schema)).write_csv(self._file, include_header=True)
        self._file.close()


class ParquetFile:
    """A Parquet file with the topic's typed columns (``Decimal(38, 8)`` for prices, quantities and money)."""

    def __init__(self, path: Path, schema: Mapping[str, pl.DataType]) -> None:
        self._path = path
        self._schema = schema
        self._frames: list[pl.DataFrame] = []

    def write(self, rows: pl.DataFrame) -> None:
        if not rows.is_empty():
            self._frames.append(rows)

    def close(self) -> None:
        frames = self._frames or [pl.DataFrame(schema=dict(self._schema))]
        pl.concat(frames, rechunk=True).write_parquet(self._path)


def sink_for(out: str, schema: Mapping[str, pl.DataType], stdout: TextIO) -> Sink:
    """The sink ``--out`` names: ``-`` (JSON lines on stdout), ``*.parquet`` or ``*.csv``."""
    if out == "-":
        return JsonLines(stdout)
    path = Path(out)
    if not path.parent.is_dir():
        raise ReplayError(f"cannot write {path}: {path.parent} is not a directory")
    if path.suffix == ".parquet":
        return ParquetFile(path, schema)
    if path.suffix == ".csv":
        return CsvFile(path, schema)
    raise ReplayError(
        f"cannot tell what to write from {out!r}", hint="end it in .parquet or .csv, or give - for stdout"
    )
