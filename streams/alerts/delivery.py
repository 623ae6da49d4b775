"""Posting an alert to its receiver: signed, keyed, retried with exponential backoff, and the outcome said.

A try fails when the receiver cannot be reached, times out, or answers 5xx, 408 or 429: those are retried. Any other
answer outside 2xx (400, 401, 404, ...) is the receiver refusing this alert, and no retry would change its mind: it
fails at once. Receivers' URLs may hold tokens (chat webhooks do), so logs name the rule and the host only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from streams.alerts import metrics, signing
from streams.alerts.alert import Alert
from streams.alerts.errors import Interrupted
from streams.alerts.rules import Delivery

log = logging.getLogger("tradecore.alerts")

IDEMPOTENCY_KEY = "Idempotency-Key"
RULE = "Tradecore-Alert-Rule"
_RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a delivery ended: ``failure`` is None when the receiver took the alert (2xx)."""

    attempts: int
    failure: str | None = None


class _TryAgain(Exception):
    """A try that another may get past (down, timed out, 5xx)."""


class _Refused(Exception):
    """The receiver answered that it will not take this alert (4xx other than 408/429)."""


class WebhookSender:
    """Sends alerts; ``send`` returns once the receiver took the alert or every try failed.

    Parameters:
        secret: the HMAC key (from ``TRADECORE_ALERTS_SECRET``; never argv, never logged).
        delivery: tries, timeouts and backoff.
        stop: set on shutdown; a wait between tries then ends with ``Interrupted``.
        clock: unix time in seconds, for the signature's timestamp.
    """

    def __init__(
        self,
        secret: bytes,
        delivery: Delivery,
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._delivery = delivery
        self._stop = stop
        self._clock = clock
        self._client = httpx.Client(timeout=delivery.timeout_s, follow_redirects=False)

    def send(self, alert: Alert) -> Outcome:
        """Post ``alert`` until the receiver answers 2xx or the tries run out.

        Raises:
            Interrupted: a stop was asked for between two tries (the alert is neither sent nor failed).
        """
        tries = 0

        def once() -> None:
            nonlocal tries
            tries += 1
            self._post(alert)

        def retrying(state: RetryCallState) -> None:
            metrics.RETRIED.labels(alert.rule).inc()
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "alert %s of rule %s to %s: %s; try %d of %d next",
                alert.key,
                alert.rule,
                _host(alert.url),
                error,
                tries + 1,
                self._delivery.attempts,
            )

        policy = Retrying(
            stop=stop_after_attempt(self._delivery.attempts),
            wait=wait_exponential(multiplier=self._delivery.backoff_s, max=self._delivery.backoff_max_s),
            retry=retry_if_exception_type(_TryAgain),
            sleep=self._sleep,
            before_sleep=retrying,
            reraise=True,
        )
        try:
            policy(once)
        except (_TryAgain, _Refused) as err:
            metrics.FAILED.labels(alert.rule).inc()
            return Outcome(tries, f"{err} (after {tries} tries)")
        metrics.SENT.labels(alert.rule).inc()
        return Outcome(tries)

    def _post(self, alert: Alert) -> None:
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_KEY: alert.key,
            RULE: alert.rule,
            signing.HEADER: signing.sign(self._secret, alert.body, int(self._clock())),
        }
        try:
            answer = self._client.post(alert.url, content=alert.body, headers=headers)
        except httpx.TimeoutException as err:
            raise _TryAgain(f"no answer within {self._delivery.timeout_s}s ({type(err).__name__})") from err
        except httpx.TransportError as err:
            raise _TryAgain(f"could not reach the receiver: {type(err).__name__}: {err}") from err
        if answer.is_success:
            return
        what = f"the receiver answered {answer.status_code} {answer.reason_phrase}"
        if answer.status_code >= 500 or answer.status_code in _RETRIED_STATUSES:
            raise _TryAgain(what)
        raise _Refused(what)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Interrupted("stopped while retrying an alert; it is sent again on the next start")

    def close(self) -> None:
        self._client.close()


def _host(url: str) -> str:
    return urlsplit(url).netloc.rpartition("@")[2]
