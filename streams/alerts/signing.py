"""Signatures of webhook bodies, the way Stripe signs its own: ``t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The MAC covers ``"<t>." + body``, so a receiver that checks the timestamp's age also refuses a replayed request;
each try is signed anew with its own timestamp.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Tradecore-Signature"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old at ``now`` — what a
    receiver checks before it trusts an alert."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))
