"""`tradecore alerts` against the real stack and a local receiver that goes down, answers 500s and comes back; and
the alerts process SIGKILLed mid-stream: every alert is taken, none is lost, a repeat carries the same key."""

from __future__ import annotations

import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from deploy import launch
from deploy.local.stack import Endpoints
from schemas.events import KillSwitchToggled, OrderFilled, OrderPlaced, OrderRejected
from schemas.settings import RegistrySettings
from streams.alerts.signing import verify
from streams.settings import KafkaSettings
from tests.streams.alerts.receiver import Receiver
from tests.streams.alerts.writing import Log, event_at
from tests.support.events import (
    kill_switch_toggled,
    order_filled,
    order_placed,
    order_rejected,
)

pytestmark = pytest.mark.integration

SECRET = "integration-secret-" + uuid.uuid4().hex


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


def _start_alerts(
    endpoints: Endpoints, prefix: str, rules: Path, log: Path, port: int, start: str = "earliest"
) -> subprocess.Popen[bytes]:
    env = {**endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix, "TRADECORE_ALERTS_SECRET": SECRET}
    command = ["alerts", "--rules", str(rules), "--metrics-port", str(port), "--start", start]
    return launch.start("alerts", command, log, env).process


def _metric(port: int, name: str, rule: str) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return 0.0
    found = re.search(rf'^tradecore_alerts_{name}_total{{rule="{rule}"}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _wait(
    condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"tradecore alerts exited {process.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout_s:.0f}s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _failed_since(receiver: Receiver, seen: int) -> bool:
    return any(r.status == 500 for r in receiver.requests[seen:])


def _alert_dead_letters(settings: KafkaSettings) -> list[tuple[bytes | None, dict[str, bytes]]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"t-{uuid.uuid4()}",
            "isolation.level": "read_committed",
        }
    )
    topic = settings.topic_prefix + "alerts.deadletter"
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.partitions)])
    found = [(m.key(), dict(m.headers() or [])) for m in consumer.consume(100, 3.0) if m.error() is None]
    consumer.close()
    return found


def test_every_alert_is_taken_through_a_receiver_down_then_failing_and_a_dead_receiver_is_dead_lettered(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, receiver: Receiver, tmp_path: Path
) -> None:
    log = Log(topics, registry_settings)
    fills = [event_at(order_filled, OrderFilled, i, account_id="ACC-1") for i in range(5)]
    throttled = [event_at(order_filled, OrderFilled, i, account_id="ACC-2") for i in range(3)]  # 1 s apart
    rejections = [event_at(order_rejected, OrderRejected, i, account_id="ACC-9") for i in range(2)]
    kill = event_at(kill_switch_toggled, KillSwitchToggled, 0, account_id="ACC-1")
    quiet = event_at(order_placed, OrderPlaced, 0, account_id="ACC-1")  # no rule alerts on it
    log.write(*fills, *throttled, *rejections, kill, quiet)
    dead = log.dead_letter("undecodable: not avro")
    log.raw("executions", b"garbage, not an event")  # the service dead-letters it, then alerts on that dead letter
    receiver.stop()  # down from the start: the first tries find nobody
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f"""
[delivery]
attempts = 12
timeout_s = 5
backoff_s = 0.25
backoff_max_s = 1.0

[rules.acc1-fills]
events = ["fill"]
accounts = ["ACC-1"]
url = "{receiver.url()}"

[rules.acc2-fills-hourly]
events = ["fill"]
accounts = ["ACC-2"]
url = "{receiver.url()}"
min_interval_s = 3600

[rules.rejections]
events = ["risk_rejection"]
url = "{receiver.url()}"

[rules.dead]
events = ["dead_letter"]
url = "{receiver.url()}"

[rules.kill]
events = ["kill_switch"]
url = "{receiver.url("/broken")}"
"""
    )
    receiver.broken_paths.add("/broken")
    port, alerts_log = launch.free_port(), tmp_path / "alerts.log"
    wanted = {(str(e.envelope.event_id), "acc1-fills") for e in fills}
    wanted |= {(str(throttled[0].envelope.event_id), "acc2-fills-hourly")}
    wanted |= {(str(e.envelope.event_id), "rejections") for e in rejections}

    def taken() -> set[tuple[str, str]]:
        return {(r.key, r.rule) for r in receiver.taken() if r.rule != "dead"}

    def dead_alerts() -> set[bytes]:
        return {r.body for r in receiver.taken() if r.rule == "dead"}

    def retried() -> float:
        return sum(_metric(port, "retried", rule) for rule in ("acc1-fills", "acc2-fills-hourly", "rejections", "dead"))

    process = _start_alerts(endpoints, topics.topic_prefix, rules, alerts_log, port)
    try:
        _wait(lambda: retried() > 0, "a try against the receiver while it is down", process, alerts_log, 90)
        receiver.failing = 3  # back, but answering 500 for a while
        receiver.start()
        _wait(lambda: taken() >= wanted, "every alert taken", process, alerts_log, 90)
        _wait(lambda: len(dead_alerts()) == 2, "both dead letters alerted", process, alerts_log, 30)
        _wait(
            lambda: _metric(port, "failed", "kill") == 1, "the kill-switch alert dead-lettered", process, alerts_log, 60
        )
        # Delivery goes on after a dead-lettered alert: later fills are alerted as they come.
        later = [event_at(order_filled, OrderFilled, 100 + i, account_id="ACC-1") for i in range(2)]
        log.write(*later)
        wanted |= {(str(e.envelope.event_id), "acc1-fills") for e in later}
        _wait(lambda: taken() >= wanted, "the later fills taken", process, alerts_log, 60)
        sent = sum(_metric(port, "sent", rule) for rule in ("acc1-fills", "acc2-fills-hourly", "rejections", "dead"))
        suppressed = _metric(port, "suppressed", "acc2-fills-hourly")
    finally:
        launch.stop(process)

    # Nothing else: the later ACC-2 fills fell within the rule's hour, and no rule alerts on OrderPlaced.
    assert taken() == wanted
    assert (sent, suppressed) == (len(wanted) + 2, 2)
    theirs, ours = sorted(dead_alerts(), key=lambda body: b'"processor":"alerts"' in body)
    assert b"undecodable: not avro" in theirs and f'"offset":{dead[2]}'.encode() in theirs
    assert b'"processor":"alerts"' in ours and b"not the Confluent magic byte" in ours
    # Repeats (the 500s) carry the same key and the same body; every try is signed with the secret.
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        bodies.setdefault(request.key, set()).add(request.body)
        assert verify(SECRET.encode(), request.signature, request.body, now=time.time())
    assert all(len(b) == 1 for b in bodies.values())
    assert sum(r.status == 500 and r.path == "/hook" for r in receiver.requests) == 3
    # The kill switch's receiver never took it: after 12 tries (down, then 500s) it is in alerts.deadletter with
    # the reason of the last one.
    assert {r.key for r in receiver.requests if r.path == "/broken"} <= {str(kill.envelope.event_id)}
    (key, headers), *others = _alert_dead_letters(topics)
    assert others == [] and key == str(kill.envelope.event_id).encode()
    assert headers["tradecore.reason"] in {
        b"the receiver answered 500 Internal Server Error (after 12 tries)",
        b"could not reach the receiver: ConnectError: [Errno 111] Connection refused (after 12 tries)",
    }
    assert headers["tradecore.alert.rule"] == b"kill"
    assert SECRET not in alerts_log.read_text()


def test_a_sigkilled_alerts_process_restarts_where_it_committed_and_skips_nothing(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, receiver: Receiver, tmp_path: Path
) -> None:
    log = Log(topics, registry_settings)
    fills = [event_at(order_filled, OrderFilled, i, account_id="ACC-1", fill_id=f"f-{i}") for i in range(40)]
    # ACC-2's fills alert at most hourly: the first before the first kill, the others after a restart, where only
    # the min-interval state committed with the position keeps them quiet.
    hourly = {i: event_at(order_filled, OrderFilled, i, account_id="ACC-2") for i in (2, 12, 25, 38)}
    log.write(*[e for i, fill in enumerate(fills) for e in ([hourly[i]] if i in hourly else []) + [fill]])
    rules = tmp_path / "rules.toml"
    rules.write_text(
        f"""
[delivery]
attempts = 20
backoff_s = 0.1
backoff_max_s = 0.5

[rules.fills]
events = ["fill"]
accounts = ["ACC-1"]
url = "{receiver.url()}"

[rules.hourly]
events = ["fill"]
accounts = ["ACC-2"]
url = "{receiver.url()}"
min_interval_s = 3600
"""
    )
    alerts_log = tmp_path / "alerts.log"
    port = launch.free_port()
    kills = 0
    process = _start_alerts(endpoints, topics.topic_prefix, rules, alerts_log, port)
    try:
        for share in (8, 20):
            # Killed while an alert is in flight: once `share` are taken the receiver answers 500s, so the next is
            # neither taken nor given up — the receiver trips itself, however fast the service delivers.
            receiver.fail_once_taken, seen = share, len(receiver.requests)
            _wait(lambda n=seen: _failed_since(receiver, n), f"a 500 after {share} taken", process, alerts_log, 90)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            kills += 1
            receiver.fail_once_taken = None
            process = _start_alerts(endpoints, topics.topic_prefix, rules, alerts_log, port)
        every = {str(f.envelope.event_id) for f in fills}
        _wait(lambda: {r.key for r in receiver.taken()} >= every, "every alert taken", process, alerts_log, 90)
    finally:
        launch.stop(process)

    assert {r.key for r in receiver.taken() if r.rule == "hourly"} == {str(hourly[2].envelope.event_id)}
    keys = [r.key for r in receiver.taken() if r.rule == "fills"]
    assert set(keys) == {str(f.envelope.event_id) for f in fills}  # none skipped, nothing else
    repeated = len(receiver.taken()) - len({r.key for r in receiver.taken()})
    assert repeated <= kills  # at most the alert in flight at each kill, under its own key
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        bodies.setdefault(request.key, set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values())
    # One partition's fills arrive in offset order: the order they were written in.
    order = {str(f.envelope.event_id): i for i, f in enumerate(fills)}
    firsts = list(dict.fromkeys(keys))
    assert firsts == sorted(firsts, key=order.__getitem__)


def test_a_new_alerts_deployment_alerts_from_now_on_not_on_the_history(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, receiver: Receiver, tmp_path: Path
) -> None:
    log = Log(topics, registry_settings)
    old = event_at(order_filled, OrderFilled, 0, account_id="ACC-1", fill_id="old")
    log.write(old)
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[rules.fills]\nevents = ["fill"]\nurl = "{receiver.url()}"\n')
    alerts_log, port = tmp_path / "alerts.log", launch.free_port()
    process = _start_alerts(endpoints, topics.topic_prefix, rules, alerts_log, port, start="latest")
    new: set[str] = set()
    try:
        # Fills keep coming until one alerts: when the group first takes its partitions is not observable.
        deadline = time.monotonic() + 90
        while not receiver.taken():
            assert process.poll() is None and time.monotonic() < deadline, alerts_log.read_text()[-2000:]
            fill = event_at(order_filled, OrderFilled, len(new) + 1, account_id="ACC-1", fill_id=f"new-{len(new)}")
            log.write(fill)
            new.add(str(fill.envelope.event_id))
            time.sleep(2)
    finally:
        launch.stop(process)
    taken = {r.key for r in receiver.taken()}
    assert taken and taken <= new, "only fills written after the service started alert"
    assert str(old.envelope.event_id) not in taken
