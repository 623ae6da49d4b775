"""Decoded ``TickIngested`` frames (``schemas.batch``'s columns) as the signal engine's ``TickColumns``, per
instrument: decimals as scaled integers, the doubled price and the trade-print flags worked out by polars, in the
ticks' order."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from domain.signals.bars import Ints, TickColumns

_DECIMALS = ("bid", "ask", "last", "last_size")


def by_instrument(frame: pl.DataFrame) -> Iterator[tuple[str, Ints, TickColumns]]:
    """Each instrument of ``frame`` (``TickIngested`` rows, in arrival order): its name, the positions of its rows in
    ``frame``, and those rows as columns.

    Raises:
        TypeError: the frame's decimals do not share one scale (the schema changed under this code).
    """
    scales = {frame.schema[name].scale for name in _DECIMALS}  # type: ignore[attr-defined]
    if len(scales) != 1:
        raise TypeError(f"TickIngested's decimals have scales {sorted(scales)}: expected one scale")
    scaled = {name: pl.col(name).to_physical().cast(pl.Int64) for name in _DECIMALS}
    bid, ask, last, size = (scaled[name] for name in _DECIMALS)
    columns = frame.select(
        pl.col("instrument"),
        position=pl.int_range(pl.len(), dtype=pl.Int64),
        ts_us=pl.col("exchange_ts").dt.epoch("us"),
        price2=pl.when(bid.is_not_null() & ask.is_not_null()).then(bid + ask).otherwise(last * 2),
        last=last,
        size=size,
    ).with_columns(
        priced=pl.col("price2").is_not_null(),
        traded=pl.col("last").is_not_null() & pl.col("size").is_not_null(),
    )
    scale = scales.pop()
    for (instrument,), part in columns.partition_by("instrument", maintain_order=True, as_dict=True).items():
        filled = part.fill_null(0)
        yield (
            str(instrument),
            filled.get_column("position").to_numpy(),
            TickColumns(
                ts_us=filled.get_column("ts_us").to_numpy(),
                price2=filled.get_column("price2").to_numpy(),
                priced=filled.get_column("priced").to_numpy(),
                last=filled.get_column("last").to_numpy(),
                size=filled.get_column("size").to_numpy(),
                traded=filled.get_column("traded").to_numpy(),
                scale=scale,
            ),
        )
