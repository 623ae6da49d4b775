"""The recorded market data is found where the project ships it, or where TRADECORE_MARKET_DATA says."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from streams.errors import MarketDataMissing
from streams.ingest.recorded import BINANCE_QUOTES, SHIPPED, market_file


def test_by_default_the_files_shipped_in_data_market_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADECORE_MARKET_DATA", raising=False)
    path = market_file(BINANCE_QUOTES)
    assert path == SHIPPED / BINANCE_QUOTES
    assert pl.read_parquet(path).height == 451


def test_tradecore_market_data_points_at_another_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shutil.copy(SHIPPED / BINANCE_QUOTES, tmp_path / BINANCE_QUOTES)
    monkeypatch.setenv("TRADECORE_MARKET_DATA", str(tmp_path))
    assert market_file(BINANCE_QUOTES) == tmp_path / BINANCE_QUOTES


def test_a_file_missing_from_the_folder_is_a_named_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADECORE_MARKET_DATA", str(tmp_path))
    with pytest.raises(MarketDataMissing) as missing:
        market_file(BINANCE_QUOTES)
    assert str(tmp_path / BINANCE_QUOTES) in str(missing.value)
    assert "TRADECORE_MARKET_DATA" in str(missing.value)
