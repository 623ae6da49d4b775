"""The form of venue snapshots: deterministic JSON (sorted keys, no spaces), Decimals as strings, a format number."""

from __future__ import annotations

import json
from typing import Any

from domain.derive import Sequences
from domain.venue.errors import SnapshotError

FORMAT = 2
"""2: finished orders carry the time they finished, and the venue its event time (the order memory); a format-1
snapshot has no times to forget by, so it is refused and the host replays the log instead."""


def dumps(snapshot: dict[str, Any]) -> bytes:
    """``snapshot`` as bytes: equal snapshots give equal bytes."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads(data: bytes) -> dict[str, Any]:
    """A snapshot's JSON object, checked to be of the format this code writes."""
    try:
        snapshot = json.loads(data)
    except ValueError as err:
        raise SnapshotError(f"a venue snapshot is JSON; this is not: {err}") from err
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise SnapshotError(f"not a venue snapshot of format {FORMAT}")
    return snapshot


def sequences_from(data: Any) -> Sequences:
    """The ``Sequences`` a snapshot's ``sequences`` map describes."""
    if not isinstance(data, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise SnapshotError("a venue snapshot's sequences are a map of order id to last sequence")
    return Sequences(last={str(k): v for k, v in data.items()})
