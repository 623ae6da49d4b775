"""What an alert says: the JSON body posted to the receiver, and the idempotency key it carries.

The body is a function of the record alone (no clock, no counter), so an alert repeated after a crash is the same
bytes under the same key; only projection lag, which is measured rather than read, is stamped when measured.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.events import Event, KillSwitchToggled, OrderFilled, OrderRejected

# The kind of alert each alerting event is, and the topic (before the namespace) it is read from.
KIND_OF: dict[type[Event], str] = {
    OrderFilled: "fill",
    OrderRejected: "risk_rejection",
    KillSwitchToggled: "kill_switch",
}
TOPIC_OF: dict[str, str] = {
    "fill": "executions",
    "risk_rejection": "orders.checked",
    "kill_switch": "orders",
    "dead_letter": "deadletter",
}
# Keys of records that carry no event id of their own (dead letters, lag) are uuid5s in this namespace.
_KEYS = uuid.UUID("6f1f6a52-8a0e-4d59-9d1e-2b2a3f7c1e10")


@dataclass(frozen=True, slots=True)
class Source:
    """Where the alerting record is in the log (the full topic name)."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Alert:
    """One POST to one receiver: ``key`` goes in the Idempotency-Key header, ``body`` is the JSON sent."""

    key: str
    rule: str
    kind: str
    url: str
    body: bytes
    source: Source | None  # None for projection lag, which is not read from the log


def for_event(event: Event, rule: str, url: str, source: Source) -> Alert:
    """The alert ``rule`` sends for a fill, a risk rejection or a kill switch; keyed by the event's id."""
    kind = KIND_OF[type(event)]
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "envelope"}
    body = _body(
        key := str(event.envelope.event_id),
        rule,
        kind,
        account=getattr(event, "account_id", None),
        occurred_at=event.envelope.occurred_at,
        detail={"event_type": type(event).__name__, **fields, "envelope": dataclasses.asdict(event.envelope)},
        source=source,
    )
    return Alert(key, rule, kind, url, body, source)


def for_dead_letter(
    headers: dict[str, bytes],
    key: bytes | None,
    value: bytes | None,
    timestamp_ms: int,
    rule: str,
    url: str,
    source: Source,
) -> Alert:
    """The alert for a record in ``deadletter``: why it died and where it came from; keyed by its own position."""
    detail: dict[str, Any] = {
        name.removeprefix("tradecore."): raw.decode(errors="replace")
        for name, raw in headers.items()
        if name.startswith("tradecore.")
    }
    detail["key"] = None if key is None else key.decode(errors="replace")
    # The raw bytes are kept for the receiver to look at, base64: they may be anything.
    detail["value_base64"] = None if value is None else base64.b64encode(value[:4096]).decode()
    detail["value_bytes"] = 0 if value is None else len(value)
    alert_key = str(uuid.uuid5(_KEYS, f"{source.topic}/{source.partition}/{source.offset}"))
    at = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
    body = _body(alert_key, rule, "dead_letter", account=None, occurred_at=at, detail=detail, source=source)
    return Alert(alert_key, rule, "dead_letter", url, body, source)


def for_projection_lag(
    behind: Mapping[str, int], threshold: int, measured_ms: int, rule: str, url: str, namespace: str
) -> Alert:
    """The alert for the read models ``behind`` (records each has still to fold) past ``threshold``, measured at
    ``measured_ms``: one alert per rule and measurement, naming every read model behind."""
    key = str(uuid.uuid5(_KEYS, f"{namespace}{rule}/{measured_ms}"))
    at = datetime.fromtimestamp(measured_ms / 1000, UTC)
    detail = {"behind_records": dict(behind), "threshold_records": threshold}
    body = _body(key, rule, "projection_lag", account=None, occurred_at=at, detail=detail, source=None)
    return Alert(key, rule, "projection_lag", url, body, None)


def _body(
    key: str,
    rule: str,
    kind: str,
    *,
    account: str | None,
    occurred_at: datetime,
    detail: dict[str, Any],
    source: Source | None,
) -> bytes:
    document = {
        "id": key,
        "rule": rule,
        "kind": kind,
        "account": account,
        "occurred_at": occurred_at.isoformat(),
        "detail": detail,
        "source": None if source is None else dataclasses.asdict(source),
    }
    return json.dumps(document, default=_json_default, separators=(",", ":"), sort_keys=True).encode()


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")  # exact, as the read models and the API spell amounts
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
