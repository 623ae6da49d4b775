"""The alerts service: reads the namespace's topics ``read_committed`` in a consumer group, one record at a time, and
commits a record's position only once each of its alerts was taken by its receiver (2xx) or dead-lettered.

So a crash repeats at most the alerts in flight — under the same idempotency key, since an alert is a function of
its record — and never skips one. The min-interval state of the rules (``throttle``) is committed with the position
(as offset-commit metadata), so a restart suppresses exactly what the crashed run suppressed.

Failed alerts go to ``<namespace>alerts.deadletter``, not to ``deadletter``: this service alerts on ``deadletter``,
and a failed alert written there would raise a dead-letter alert to the receiver that just failed, and so on; the
records also differ (an alert's JSON, not an input record's raw bytes).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from schemas.contract_errors import EventDecodeError
from schemas.events import Event
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer
from streams import kafka
from streams.alerts import alert, metrics
from streams.alerts.alert import KIND_OF, TOPIC_OF, Alert, Source
from streams.alerts.delivery import Outcome
from streams.alerts.errors import AlertsError, Interrupted
from streams.alerts.rules import Rule, Rules
from streams.alerts.throttle import Throttle
from streams.kafka.logreader import Position, RawRecord, raw_records
from streams.kafka.topics import TopicLayout, TopicSpec, cluster_size, ensure_topics

log = logging.getLogger("tradecore.alerts")

ALERTS_DEADLETTER = TopicSpec("alerts.deadletter", "alert id", "alerts that failed every try, with the reason")
COMMIT_EVERY_S = 5.0  # records that alert nobody: their positions are committed at this pace (repeating them is free)

LagProbe = Callable[[], Mapping[str, int]]  # records each read model has still to fold, by projection


class Sender(Protocol):
    def send(self, alert: Alert) -> Outcome: ...


class AlertService:
    """Alerts by ``rules`` for the namespace of ``settings``; ``run`` until ``stop`` is set.

    Parameters:
        group: the consumer group whose committed offsets are the delivery position.
        start: where a group with no position yet begins: ``latest`` (alert on what happens from now on — a new
            deployment does not page for the whole history) or ``earliest`` (every event in the log).
        lag_probe: measures projection lag (needed only by projection_lag rules).
        clock: unix time in seconds (projection lag is measured, not read from the log).
    """

    def __init__(
        self,
        settings: kafka.KafkaSettings,
        registry: SchemaRegistry,
        rules: Rules,
        sender: Sender,
        *,
        group: str,
        start: Literal["latest", "earliest"] = "latest",
        lag_probe: LagProbe | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._prefix = settings.topic_prefix
        self._rules = rules
        self._sender = sender
        self._lag_probe = lag_probe
        self._clock = clock
        self._throttle = Throttle({r.name: int(r.min_interval_s * 1000) for r in rules.rules})
        self._commits = 0  # orders the commits' metadata: a restart takes the state of the latest
        kinds = rules.kinds()
        self._wanted: dict[str, set[str]] = {}  # topic (full name) -> the event types that alert on it
        for kind, topic in TOPIC_OF.items():
            if kind in kinds:
                names = {cls.__name__ for cls, k in KIND_OF.items() if k == kind}
                self._wanted.setdefault(self._prefix + topic, set()).update(names)
        self._decoders = {
            self._prefix + topic: EventDeserializer(registry, topic, topic_prefix=self._prefix)
            for topic in {TOPIC_OF[k] for k in kinds if k in TOPIC_OF and k != "dead_letter"}
        }
        self._check_topics(settings)
        self._producer = kafka.producer(settings)
        self._positions: dict[Position, int] = {}
        self._dirty = False  # positions handled since the last commit
        self._wrote = False  # the record in hand was dead-lettered as undecodable
        self._consumer: kafka.Consumer | None = None
        if self._wanted:
            # One alert may take every try's timeout and wait: the group must not count that as a dead member.
            worst_s = rules.delivery.budget_s() * len(rules.rules) + 60
            overrides = {
                "max.poll.interval.ms": int(max(300, worst_s) * 1000),
                # A static member: a restart after a crash takes its partitions back at once instead of waiting
                # out the dead member's session, and a second instance started by mistake is fenced, not split in.
                "group.instance.id": f"{group}-service",
                "auto.offset.reset": start,
            }
            self._consumer = kafka.consumer(settings, group, **overrides)
            self._consumer.subscribe(sorted(self._wanted), on_assign=self._assigned, on_revoke=self._revoked)

    def _check_topics(self, settings: kafka.KafkaSettings) -> None:
        client = kafka.admin(settings)
        existing = client.list_topics(timeout=30).topics
        missing = sorted(t for t in self._wanted if t not in existing)
        if missing:
            raise AlertsError(
                f"the topics {', '.join(missing)} do not exist",
                hint="run `tradecore topics ensure` with the same TRADECORE_TOPIC_PREFIX",
            )
        layout = TopicLayout.for_cluster(cluster_size(client), settings.partitions)
        ensure_topics(client, layout, self._prefix, [ALERTS_DEADLETTER])

    def run(self, stop: threading.Event) -> None:
        """Alert until ``stop`` is set; the position of every record handled is committed before returning."""
        next_lag = self._clock() if self._lag_probe is not None and self._lag_rules() else float("inf")
        last_commit = time.monotonic()
        try:
            while not stop.is_set():
                if self._clock() >= next_lag:
                    self._check_lag()
                    next_lag = self._clock() + self._rules.delivery.lag_check_s
                record = self._poll(min(0.5, max(0.0, next_lag - self._clock())))
                if record is not None:
                    self._handle(record)
                if self._dirty and time.monotonic() - last_commit > COMMIT_EVERY_S:
                    self._commit()
                    last_commit = time.monotonic()
        except Interrupted as err:
            log.info("%s", err)
        finally:
            if self._dirty:
                self._commit()

    def _poll(self, timeout_s: float) -> RawRecord | None:
        if self._consumer is None:
            time.sleep(timeout_s)
            return None
        try:
            msg = self._consumer.poll(timeout_s)
        except kafka.KafkaException as err:
            raise AlertsError(f"reading from Kafka failed: {err}") from err
        if msg is None:
            return None
        error = msg.error()
        if error is not None:
            if error.fatal():
                raise AlertsError(f"reading {msg.topic()} failed: {error.str()}")
            log.warning("reading %s: %s", msg.topic(), error.str())
            return None
        [record] = raw_records([msg])
        return record

    def _handle(self, record: RawRecord) -> None:
        """Send every alert of ``record``, then count it handled; committed at once if it alerted anyone."""
        self._wrote = False
        alerts = self._alerts_for(record)
        for each in alerts:
            self._deliver(each)
        self._positions[(record.topic, record.partition)] = record.offset + 1
        self._dirty = True
        if alerts or self._wrote:
            self._commit()  # a crash now must not repeat what was written for it under another key

    def _alerts_for(self, record: RawRecord) -> list[Alert]:
        source = Source(record.topic, record.partition, record.offset)
        if record.topic == self._prefix + TOPIC_OF["dead_letter"]:
            headers = dict(record.headers or [])
            return [
                alert.for_dead_letter(
                    headers, record.key, record.value, record.timestamp_ms, rule.name, str(rule.url), source
                )
                for rule in self._admitted("dead_letter", None, record.timestamp_ms)
            ]
        event = self._decode(record)
        if event is None:
            return []
        kind = KIND_OF[type(event)]
        account: str | None = getattr(event, "account_id", None)
        return [
            alert.for_event(event, rule.name, str(rule.url), source)
            for rule in self._admitted(kind, account, record.timestamp_ms)
        ]

    def _decode(self, record: RawRecord) -> Event | None:
        """The record's event if it is one that alerts; a record that does not decode is dead-lettered."""
        decoder = self._decoders[record.topic]
        try:
            _, found = decoder.read(record.value, self._wanted[record.topic])
            return None if found is None else decoder.deserialize(record.value)
        except EventDecodeError as err:
            self._dead_letter_input(record, f"undecodable: {err}")
            return None

    def _admitted(self, kind: str, account: str | None, at_ms: int) -> list[Rule]:
        admitted = []
        for rule in self._rules.matching(kind, account):
            if self._throttle.admit(rule.name, at_ms):
                admitted.append(rule)
            else:
                metrics.SUPPRESSED.labels(rule.name).inc()
        return admitted

    def _lag_rules(self) -> list[Rule]:
        return [rule for rule in self._rules.rules if "projection_lag" in rule.events]

    def _check_lag(self) -> None:
        assert self._lag_probe is not None
        try:
            behind = dict(self._lag_probe())
        except Exception as err:  # the read models' database may be away: fills must still be alerted meanwhile
            log.warning("could not measure projection lag: %s: %s", type(err).__name__, err)
            return
        now_ms = int(self._clock() * 1000)
        sent = False
        for rule in self._lag_rules():
            assert rule.lag_threshold is not None  # the rules file holds it for every projection_lag rule
            over = {name: n for name, n in sorted(behind.items()) if n > rule.lag_threshold}
            if not over or not self._throttle.admit(rule.name, now_ms):
                continue
            self._deliver(
                alert.for_projection_lag(over, rule.lag_threshold, now_ms, rule.name, str(rule.url), self._prefix)
            )
            sent = True
        if sent and self._consumer is not None:
            self._commit()  # the rules' min-interval state moved

    def _deliver(self, each: Alert) -> None:
        outcome = self._sender.send(each)
        if outcome.failure is None:
            log.info("alert %s (%s, rule %s) taken after %d tries", each.key, each.kind, each.rule, outcome.attempts)
            return
        log.warning("alert %s (%s, rule %s) dead-lettered: %s", each.key, each.kind, each.rule, outcome.failure)
        headers = [
            ("tradecore.reason", outcome.failure.encode()[:4000]),
            ("tradecore.alert.rule", each.rule.encode()),
            ("tradecore.alert.kind", each.kind.encode()),
            ("tradecore.alert.attempts", str(outcome.attempts).encode()),
            ("tradecore.processor", b"alerts"),
        ]
        if each.source is not None:
            headers += [
                ("tradecore.source.topic", each.source.topic.encode()),
                ("tradecore.source.partition", str(each.source.partition).encode()),
                ("tradecore.source.offset", str(each.source.offset).encode()),
            ]
        self._send_now(self._prefix + ALERTS_DEADLETTER.name, each.key.encode(), each.body, headers)

    def _dead_letter_input(self, record: RawRecord, reason: str) -> None:
        log.warning("dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
        headers = [
            ("tradecore.source.topic", record.topic.encode()),
            ("tradecore.source.partition", str(record.partition).encode()),
            ("tradecore.source.offset", str(record.offset).encode()),
            ("tradecore.processor", b"alerts"),
            ("tradecore.reason", reason.encode()[:4000]),
        ]
        self._send_now(self._prefix + "deadletter", record.key, record.value, headers)
        self._wrote = True

    def _send_now(self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """Write one record and wait for Kafka's acknowledgement: the position after it is committed next."""
        failures: list[str] = []

        def acknowledged(err: kafka.KafkaError | None, _msg: kafka.Message) -> None:
            if err is not None:
                failures.append(err.str())

        self._producer.produce(topic, key=key, value=value, headers=headers, on_delivery=acknowledged)
        if self._producer.flush(30) or failures:
            raise AlertsError(f"could not write to {topic}: {', '.join(failures) or 'no acknowledgement in 30s'}")

    def _commit(self) -> None:
        """Commit every position handled, with the rules' min-interval state, and wait for the broker's answer."""
        if self._consumer is None or not self._positions:
            self._dirty = False
            return
        self._commits += 1
        state = json.dumps({"n": self._commits, "throttle": self._throttle.state()})
        offsets = [kafka.TopicPartition(t, p, o, metadata=state) for (t, p), o in sorted(self._positions.items())]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except kafka.KafkaException as err:
            raise AlertsError(f"could not commit the delivery position: {err}") from err
        self._dirty = False

    def _assigned(self, consumer: kafka.Consumer, partitions: list[kafka.TopicPartition]) -> None:
        """Take the min-interval state of the latest commit among the partitions now ours."""
        saved = [found for tp in consumer.committed(partitions, timeout=30) if (found := _saved(tp.metadata))]
        if saved:
            commits, throttle = max(saved, key=lambda found: found[0])
            self._commits = max(self._commits, commits)
            self._throttle.restore(throttle)

    def _revoked(self, _consumer: kafka.Consumer, partitions: list[kafka.TopicPartition]) -> None:
        if self._dirty:
            self._commit()
        for tp in partitions:
            self._positions.pop((tp.topic, tp.partition), None)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        self._producer.flush(30)


def _saved(metadata: str | None) -> tuple[int, dict[str, int]] | None:
    """(commit number, throttle state) from a commit's metadata; None for a commit not made by this service."""
    try:
        saved = json.loads(metadata or "null")
        return int(saved["n"]), {str(rule): int(at) for rule, at in saved["throttle"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
