"""The live feed: what each committed batch changed in the read models, for the API's GET /v1/stream.

The runner appends one ``live_changes`` row per read-model row a batch wrote (orders, fills, positions, pnl, candles,
signals, rejections, risk limits) and sends ``NOTIFY`` on the schema's channel, both in the batch's own transaction:
Postgres delivers a notification only when its transaction commits, so a listener is never told of a change it
cannot read yet, and a crash loses neither. The feed keeps the newest ``RETAINED`` changes; a client further behind
reloads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from projections import tables
from projections.projectors.base import Row, payload
from projections.projectors.columns import json_object

KINDS = {
    tables.orders.name: "order",
    tables.fills.name: "fill",
    tables.positions.name: "position",
    tables.pnl.name: "pnl",
    tables.candles.name: "candle",
    tables.signals_latest.name: "signal",
    tables.risk_rejections.name: "rejection",
    tables.risk_limits.name: "limits",
}
RETAINED = 200_000  # changes kept for clients catching up (minutes of a busy session)
PRUNE_EVERY = 200  # batches between prunes


def channel(schema: str) -> str:
    """The NOTIFY channel of a schema's feed: the schema's own name (an identifier, so a valid channel)."""
    return schema


def publish(
    conn: psycopg.Connection[Any],
    schema: str,
    changed: Mapping[str, Sequence[Row]],
    appended: Mapping[str, Sequence[pl.DataFrame]],
    prune: bool,
) -> None:
    """Append what a batch ``changed`` (rows per table) and ``appended`` (frames per table) to the feed and notify,
    in the caller's transaction."""
    kinds: list[str] = []
    accounts: list[str | None] = []
    rows: list[str] = []  # JSON text
    for table, written in changed.items():
        kind = KINDS.get(table)
        if kind is None:
            continue
        for row in written:
            kinds.append(kind)
            accounts.append(row.get("account_id"))
            rows.append(json.dumps(payload(row)))
    for table, frames in appended.items():
        kind = KINDS.get(table)
        if kind is None:
            continue
        for frame in frames:  # the same JSON as ``payload`` makes of a row, built as a column
            kinds += [kind] * frame.height
            accounts += frame["account_id"].to_list()
            rows += frame.select(json_object(frame, frame.columns)).to_series().to_list()
    if not rows:
        return
    feed = sql.Identifier(schema, tables.live_changes.name)
    # Ids are numbered under this lock and it is held to the commit, so they are visible in the order they grow
    # even when several runners write the schema's read models.
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{schema}.live_changes"])
    last = conn.execute(
        sql.SQL(
            "WITH added AS (INSERT INTO {} (kind, account_id, row) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]::jsonb[]) RETURNING id) SELECT max(id) FROM added"
        ).format(feed),
        [kinds, accounts, rows],
    ).fetchone()
    newest = 0 if last is None else int(last[0])
    if prune:
        conn.execute(sql.SQL("DELETE FROM {} WHERE id <= %s").format(feed), [newest - RETAINED])
    conn.execute("SELECT pg_notify(%s, %s)", [channel(schema), str(newest)])
