"""A second `tradecore worker risk` joining a running one moves only its share: the first instance's tasks for the
partitions it keeps are not rebuilt (no checkpoint loaded, no record replayed), the joiner brings up only the
partitions it takes, from the checkpoints written as they were revoked, and every order is still decided once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.local.stack import Endpoints
from schemas.events import CancelRequested, OrderPlaced
from schemas.settings import RegistrySettings
from streams.kafka.registry import registry_client
from streams.settings import KafkaSettings
from tests.streams.test_checkpoint_restart import decisions, start, wait_for
from tests.support.log import append
from tests.support.market_log import session

pytestmark = pytest.mark.integration

PARTITIONS = set(range(6))
REBUILD = re.compile(
    r"\w+: rebuilt state from (?P<replayed>\d+) records in [\d.]+ s \(\d+ partition\(s\) rebuilt, "
    r"(?P<restored>\d+) from checkpoints, \d+ kept\); rebuilt \[(?P<rebuilt>[\d, ]*)\], kept \[(?P<kept>[\d, ]*)\]"
)


def rebuilds(log: Path) -> list[dict[str, int | set[int]]]:
    """Each rebuild an instance logged: records replayed, checkpoints restored, partitions rebuilt and kept."""
    found: list[dict[str, int | set[int]]] = []
    for m in REBUILD.finditer(log.read_text()):
        found.append(
            {
                "replayed": int(m["replayed"]),
                "restored": int(m["restored"]),
                "rebuilt": {int(p) for p in m["rebuilt"].split(",") if p.strip()},
                "kept": {int(p) for p in m["kept"].split(",") if p.strip()},
            }
        )
    return found


def test_a_joining_instance_moves_only_its_share(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    client = registry_client(registry_settings)
    events = session(2400, accounts=24)
    half = len(events) // 2
    decided = [isinstance(e, (OrderPlaced, CancelRequested)) for e in events]
    append(topics, client, events[:half])
    first_log, joiner_log = tmp_path / "first.log", tmp_path / "joiner.log"
    first = start(endpoints, topics.topic_prefix, first_log, "0")
    joiner = None
    try:
        wait_for(lambda: decisions(topics) >= sum(decided[:half]), 120, "the first instance did not decide", first)
        joiner = start(endpoints, topics.topic_prefix, joiner_log, "1")
        wait_for(
            lambda: bool(rebuilds(joiner_log)) and len(rebuilds(first_log)) >= 2,
            90,
            "the joiner did not join",
            first,
            joiner,
        )
        # Both decide the second half, each its own partitions' orders.
        append(topics, client, events[half:])
        wait_for(
            lambda: decisions(topics) >= sum(decided), 120, "the pair did not decide the second half", first, joiner
        )
    finally:
        for worker in (first, joiner):
            if worker is not None:
                worker.stop()

    start_up, *after = rebuilds(first_log)
    assert start_up["rebuilt"] == PARTITIONS
    # Once the joiner is in, the first instance holds its share and has rebuilt nothing since its start.
    assert after, "the first instance saw no revocation"
    for rebuild in after:
        assert rebuild["rebuilt"] == set() and rebuild["replayed"] == 0 and rebuild["restored"] == 0, rebuild
    kept = after[-1]["kept"]
    assert 0 < len(kept) < len(PARTITIONS)
    # The joiner brought up exactly the partitions the first gave up, each from the checkpoint written as it was
    # revoked: nothing left to replay.
    [joined] = rebuilds(joiner_log)
    assert joined["rebuilt"] == PARTITIONS - kept
    assert joined["restored"] == len(joined["rebuilt"])
    assert joined["replayed"] == 0
    assert "starting over" not in first_log.read_text() + joiner_log.read_text()
    assert decisions(topics) == sum(decided)  # nothing twice
