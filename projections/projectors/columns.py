"""Decoded event frames (``schemas.batch``) as projectors use them: table columns as polars expressions, JSON
objects built as columns, and — for folds, which work key by key — the rows as the per-record deserializer's dicts.

A frame here is one event type's rows of a polled batch: ``index`` (its place in the batch), ``topic`` (without
the namespace prefix), ``partition``, ``offset``, then the event's fields as the batch decoder gives them (the
envelope a struct, decimals ``pl.Decimal``, times ``Datetime("us", "UTC")``, enums ``pl.Enum``, uuids text, maps
lists of key/value structs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from schemas.batch import INDEX

SOURCE = ("topic", "partition", "offset")  # where a row came from: every frame has them, after INDEX


def envelope(field: str) -> pl.Expr:
    """A field of the event's envelope."""
    return pl.col("envelope").struct.field(field)


def isoformat(column: pl.Expr) -> pl.Expr:
    """UTC times as ``datetime.isoformat`` writes them: fractions only when there are any, then ``+00:00``."""
    whole = column.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return (
        pl.when(column.dt.microsecond() == 0).then(whole).otherwise(column.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    )


def json_ready(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column as ``projectors.base.payload`` puts its values in JSON: decimals as exact text, times in ISO 8601,
    enums as their text; maps (only SignalGenerated has one) as objects of their entries."""
    column = pl.col(name)
    if isinstance(dtype, pl.Decimal):
        return column.cast(pl.String)
    if isinstance(dtype, pl.Datetime):
        return isoformat(column)
    if isinstance(dtype, pl.Enum | pl.Categorical):
        return column.cast(pl.String)
    if isinstance(dtype, pl.List):
        raise TypeError(f"{name}: a map column has no JSON form here; fold it record by record")
    return column


def json_object(frame: pl.DataFrame, names: Iterable[str]) -> pl.Expr:
    """One JSON object per row of ``frame``'s columns ``names`` (in that order), as text for a jsonb column."""
    return pl.struct([json_ready(name, frame.schema[name]).alias(name) for name in names]).struct.json_encode()


def payload(frame: pl.DataFrame) -> pl.Expr:
    """The event's own fields (not the envelope, not where it came from) as a JSON object per row."""
    return json_object(frame, [n for n in frame.columns if n not in (INDEX, *SOURCE, "envelope")])


def dicts(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows as ``EventDeserializer.read`` gives an event (uuids stay text, maps become dicts), with ``index``
    and the source columns: the input of a fold, which goes key by key anyway."""
    maps = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.List)]
    enums = [pl.col(name).cast(pl.String) for name, dtype in frame.schema.items() if isinstance(dtype, pl.Enum)]
    rows = frame.with_columns(enums).to_dicts()
    for row in rows:
        for name in maps:
            row[name] = {entry["key"]: entry["value"] for entry in row[name]}
    return rows
