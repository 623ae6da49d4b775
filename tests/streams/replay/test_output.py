"""A replay to Parquet writes every row it was given, typed, in order — whether it held them all in memory or set
them aside on disk on the way (a long replay)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from streams.replay import output
from streams.replay.output import ParquetFile
from streams.replay.rows import columns

SCHEMA = columns("executions")


def rows(start: int, n: int) -> pl.DataFrame:
    """``n`` replay rows of executions from offset ``start``: exact decimals, zoned times, a null in a union."""
    at = datetime(2021, 1, 8, tzinfo=UTC)
    data = {
        "topic": ["executions"] * n,
        "partition": [i % 3 for i in range(n)],
        "offset": list(range(start, start + n)),
        "timestamp": [at + timedelta(milliseconds=i) for i in range(start, start + n)],
        "key": [f"ACC-{i}" for i in range(start, start + n)],
        "fill_price": [Decimal("40000.12345678") + i for i in range(start, start + n)],
        "error": [None] * n,
    }
    return pl.DataFrame(data).select(
        pl.col(name).cast(dtype) if name in data else pl.lit(None, dtype).alias(name) for name, dtype in SCHEMA.items()
    )


@pytest.mark.parametrize("spill_rows", [1_000_000, 6], ids=["held", "set-aside"])
def test_every_row_is_written_typed_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spill_rows: int
) -> None:
    monkeypatch.setattr(output, "SPILL_ROWS", spill_rows)
    out = tmp_path / "executions.parquet"
    sink = ParquetFile(out, SCHEMA)
    given = [rows(0, 3), rows(3, 4), rows(7, 3), rows(10, 2)]
    for frame in given:
        sink.write(frame)
    aside = list(tmp_path.glob(".executions.parquet-*/*.arrow"))
    assert len(aside) == (0 if spill_rows > 12 else 1)  # (the first 7 rows; the last 5 are set aside at close)
    sink.close()

    got = pl.read_parquet(out)
    assert got.equals(pl.concat(given))
    assert got.schema["fill_price"] == pl.Decimal(38, 8) and got["fill_price"][11] == Decimal("40011.12345678")
    assert [p.name for p in tmp_path.iterdir()] == ["executions.parquet"]  # nothing left beside it


def test_no_rows_still_make_a_file_that_says_what_it_would_hold(tmp_path: Path) -> None:
    out = tmp_path / "executions.parquet"
    sink = ParquetFile(out, SCHEMA)
    sink.close()
    got = pl.read_parquet(out)
    assert got.height == 0 and dict(got.schema) == dict(SCHEMA)
