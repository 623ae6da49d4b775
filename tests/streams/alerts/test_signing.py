"""Signatures a receiver can check: Stripe's ``t=...,v1=...`` scheme over timestamp and body."""

from __future__ import annotations

import hashlib
import hmac

from streams.alerts.signing import sign, verify

SECRET = b"0123456789abcdef-secret"
BODY = b'{"id":"e1","kind":"fill"}'


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, BODY, now=1_700_000_010)


def test_a_tampered_body_another_secret_or_an_old_timestamp_fails() -> None:
    header = sign(SECRET, BODY, 1_700_000_000)
    assert not verify(SECRET, header, BODY + b" ", now=1_700_000_000)
    assert not verify(b"another-secret-of-16", header, BODY, now=1_700_000_000)
    assert not verify(SECRET, header, BODY, now=1_700_000_000 + 301)  # a replay outside the tolerance
    assert not verify(SECRET, header.replace("t=1700000000", "t=1700000100"), BODY, now=1_700_000_100)
    assert not verify(SECRET, "garbage", BODY, now=1_700_000_000)
