"""``POST /v1/ticks`` bodies read as columns: the JSON ``IngestTicks`` document, an Arrow IPC stream or Parquet, by
``Content-Type``.

A body in the canonical form — decimals as plain strings (``"39432.99"``), times as ISO 8601 with an offset,
symbols as the ``Id`` grammar — is checked as whole columns and becomes a tick frame without a model object per
tick. A body the column check cannot vouch for (a JSON number for a decimal, a time in another form, a field the
schema does not have, a row that breaks a field rule...) is validated by pydantic as ``IngestTicks`` exactly as the
route always did, so its 422 names the tick's index and field in the same words; a valid one then takes the
per-tick path. Columnar bodies carry the ticks' fields as columns (decimals as strings or decimal columns, times as
time-zone-aware datetimes or ISO strings) and their ``source`` in the query; typed columns whose values are in range
are taken as they are, the others checked as the text they would be in JSON.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

import msgspec
import polars as pl
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api import bodies
from api.errors import BodyRefused
from commands import tick_frames
from commands.models import IngestTicks, Tick
from commands.tick_frames import TickAt

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MAX_TICKS = 10_000  # IngestTicks.ticks max_length
FIELDS = frozenset(Tick.model_fields)
_ID = r"^[A-Za-z0-9._:\-]{1,64}$"  # commands.models.Id
_TIME = r"^\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
_ID_TEXT = re.compile(_ID)
_PARSED = "exchange_ts parsed"  # (a name no tick field has)


@dataclass(frozen=True)
class TickBody:
    """A body as columns (``ticks``, ``tick_frames.TICKS``) with its source, or — when the columns could not vouch
    for it — as the validated command."""

    source: str
    ticks: pl.DataFrame | None
    tick_at: TickAt
    command: IngestTicks | None = None


async def read(request: Request, source: str) -> TickBody:
    """The body by its Content-Type; 415 for a type this route does not read, 400 when it cannot be parsed, 422
    (pydantic's errors, located in the body) when a tick breaks a field rule."""
    kind = _media_type(request.headers.get("content-type"))
    raw = await request.body()
    if kind == "json":
        return _json(raw)
    if kind in (ARROW, PARQUET):
        return _columnar(raw, kind, source)
    raise HTTPException(415, f"Content-Type {kind} is not read here: send application/json, {ARROW} or {PARQUET}")


def _media_type(header: str | None) -> str:
    if not header:
        return "json"  # as FastAPI reads a body sent without a type
    message = Message()
    message["content-type"] = header
    kind = message.get_content_type()
    if message.get_content_maintype() == "application" and (kind == "application/json" or kind.endswith("+json")):
        return "json"
    return kind


def _json(raw: bytes) -> TickBody:
    """As FastAPI reads a JSON body (its errors included), then as columns where the form allows."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    canonical = _canonical_json(raw)
    if canonical is not None:
        return canonical
    try:
        document = bodies.loads(raw)
    except json.JSONDecodeError as err:
        error = {"type": "json_invalid", "loc": ("body", err.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": err.msg}}], body=err.doc) from err
    except BodyRefused:
        raise
    except Exception as err:  # not UTF-8, nested too deeply: named by the 400 handler
        raise HTTPException(400, "There was an error parsing the body") from err
    return _validated(document)


def _canonical_json(raw: bytes) -> TickBody | None:
    """The body as columns when it is in the canonical form and repeats no key, else None (the strict reader and
    pydantic decide, and word any error).

    msgspec reads it (four times faster than the strict reader's hook per object) but keeps the last of a repeated
    key, so the repeats are counted instead: in a canonical body no string holds a '"' (every key is a tick field's
    name, every value matched its grammar), so each '"' in the bytes delimits a key or a text value, and the bytes
    hold exactly two for each key and each text value the decoded document kept — more only if a key was repeated.
    """
    try:
        document = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # nested too deeply: the strict reader words it
        return None
    columns = _json_columns(document)
    if columns is None:
        return None
    source, text, ticks = columns
    frame = _frame(text)
    if frame is None:
        return None
    keys = len(document) + sum(map(len, ticks))
    texts = ("source" in document) + text.height * text.width - sum(text.null_count().row(0))  # a null has no '"'
    if raw.count(b'"') != 2 * (keys + texts):
        return None
    return TickBody(source, frame, lambda i: Tick.model_validate(ticks[i]))


def _json_columns(document: Any) -> tuple[str, pl.DataFrame, list[dict[str, Any]]] | None:
    """The ticks' fields as text columns, or None when a value is not text (a number, a list...) or a key unknown."""
    if type(document) is not dict or not document.keys() <= {"source", "ticks"}:
        return None
    source, ticks = document.get("source", "api"), document.get("ticks")
    if type(source) is not str or not _ID_TEXT.fullmatch(source):
        return None
    if type(ticks) is not list or not 1 <= len(ticks) <= MAX_TICKS or not all(type(t) is dict for t in ticks):
        return None
    keys: set[str] = set().union(*ticks)
    if not keys <= FIELDS:
        return None
    try:
        text = pl.DataFrame([pl.Series(k, [t.get(k) for t in ticks], dtype=pl.String, strict=True) for k in keys])
    except (TypeError, ValueError):  # a value that is not text: a number, a list, an object
        return None
    return source, text, ticks


def _columnar(raw: bytes, kind: str, source: str) -> TickBody:
    try:
        frame = pl.read_ipc_stream(io.BytesIO(raw)) if kind == ARROW else pl.read_parquet(io.BytesIO(raw))
    except (Exception, pl.exceptions.PanicException) as err:  # polars panics on some damaged files
        raise HTTPException(400, "There was an error parsing the body") from ValueError(
            f"not an {'Arrow IPC stream' if kind == ARROW else 'Parquet file'}: {str(err).splitlines()[0][:200]}"
        )
    if 1 <= frame.height <= MAX_TICKS and _ID_TEXT.fullmatch(source):
        ticks = _typed(frame)
        if ticks is None:
            text = _as_text(frame)
            ticks = _frame(text) if text is not None else None
        if ticks is not None:  # row i as text only to word a violation
            return TickBody(source, ticks, lambda i: Tick.model_validate(_row_text(frame, i)))
    return _validated({"source": source, "ticks": frame.to_dicts()})


def _row_text(frame: pl.DataFrame, i: int) -> dict[str, Any]:
    text = _as_text(frame.slice(i, 1))
    assert text is not None  # the whole frame's columns had text forms
    return text.row(0, named=True)


def _typed(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The tick frame of columns already of the ticks' types — text ids, decimals of at most 8 places,
    time-zone-aware times — whose every value is one the text columns of ``_as_text`` would pass ``_frame`` with,
    without writing and reading them as text; else None (the text path decides)."""
    schema = frame.schema
    if not set(schema) <= FIELDS or "instrument" not in schema or "exchange_ts" not in schema:
        return None
    utc = pl.col("exchange_ts").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    plain = pl.lit(True)
    for name, dtype in schema.items():
        value = pl.col(name)
        if (name == "instrument" and dtype == pl.String) or (name == "venue" and dtype in (pl.String, pl.Null)):
            plain &= _id(name, value)
        elif name == "exchange_ts" and isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            plain &= value.is_not_null() & utc.dt.year().is_between(0, 9999)  # a year %Y writes in 4 digits
        elif isinstance(dtype, pl.Decimal) and dtype.scale <= 8 and name in (*tick_frames.PRICES, *tick_frames.SIZES):
            # tick_frames.PLAIN_DECIMAL's range: no sign, at most 10 digits before the point
            low = value > 0 if name in tick_frames.PRICES else value >= 0
            plain &= value.is_null() | (low & (value < 10**10))
        elif dtype != pl.Null or name in ("instrument", "exchange_ts"):
            return None
    if not frame.select(plain.all()).item():
        return None
    return tick_frames.tick_frame(frame.with_columns(utc))


def _as_text(frame: pl.DataFrame) -> pl.DataFrame | None:
    """The columns as the JSON body would give them, or None when one is not a tick field or not text-like."""
    if not set(frame.columns) <= FIELDS:
        return None
    columns = []
    for name, dtype in frame.schema.items():
        column = frame.get_column(name)
        decimal = isinstance(dtype, pl.Decimal) and name in (*tick_frames.PRICES, *tick_frames.SIZES)
        if dtype in (pl.String, pl.Null) or decimal:
            columns.append(column.cast(pl.String))
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None and name == "exchange_ts":
            utc = column.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            columns.append(utc.dt.to_string("%Y-%m-%dT%H:%M:%S%.6fZ"))
        else:
            return None  # floats, naive times...: pydantic words what is wrong with them
    return pl.DataFrame(columns)


def _frame(text: pl.DataFrame) -> pl.DataFrame | None:
    """The tick frame of text columns whose every value is in the canonical form, else None."""
    if "instrument" not in text.columns or "exchange_ts" not in text.columns:
        return None
    # The times parsed once: the check asks that each parsed, the frame keeps them.
    timed = text.with_columns(_time(pl.col("exchange_ts")).alias(_PARSED))
    plain = pl.lit(True)
    for name in text.columns:
        value = pl.col(name)
        if name in ("instrument", "venue"):
            plain &= _id(name, value)
        elif name == "exchange_ts":
            plain &= value.is_not_null() & value.str.contains(_TIME) & pl.col(_PARSED).is_not_null()
        else:
            plain &= tick_frames.plain_decimal(value, positive=name in tick_frames.PRICES)
    if not timed.select(plain.all()).item():
        return None
    return tick_frames.tick_frame(timed.with_columns(pl.col(_PARSED).alias("exchange_ts")))


def _id(name: str, value: pl.Expr) -> pl.Expr:
    """Whether each value of the instrument (required) or venue (optional) column is in the ``Id`` grammar."""
    grammar = value.str.contains(_ID)
    return value.is_not_null() & grammar if name == "instrument" else value.is_null() | grammar


def _time(text: pl.Expr) -> pl.Expr:
    return text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False)


def _validated(document: Mapping[str, Any] | Any) -> TickBody:
    """pydantic's reading of the body, its errors located in the body as FastAPI locates them."""
    try:
        command = IngestTicks.model_validate(document, from_attributes=True)  # as FastAPI validates a body
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from err
    return TickBody(command.source, None, command.ticks.__getitem__, command)
