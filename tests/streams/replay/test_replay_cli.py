"""`tradecore replay` as users run it, over a real topic: ranges by offset and time, filters, the three outputs,
committed transactions only, undecodable records reported."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from schemas.events import OrderFilled, Side
from schemas.registry import registry_client
from schemas.serde import EventSerializer, register_all
from schemas.settings import RegistrySettings
from streams import kafka
from streams.host.processor import event_time_ms
from streams.replay.reader import Order, TopicReader
from streams.replay.rows import columns, frame, row
from streams.settings import KafkaSettings
from tests.support.events import envelope, order_cancelled, order_filled
from tests.support.log import append

pytestmark = pytest.mark.integration

START = datetime(2021, 1, 8, 10, 0, tzinfo=UTC)
INSTRUMENTS = ["BTCUSDT", "ETHUSDT", "XBTUSD"]  # three keys: spread over partitions


def fill(n: int) -> OrderFilled:
    """The n-th fill: a second apart, over three instruments, with prices that floats could not keep."""
    at = START + timedelta(seconds=n)
    return order_filled(
        envelope=envelope(OrderFilled, occurred_at=at, recorded_at=at, sequence=n + 1, aggregate_id=f"ord-{n}"),
        order_id=f"ord-{n}",
        account_id=f"ACC-{n % 4}",
        instrument=INSTRUMENTS[n % 3],
        fill_id=f"fill-{n}",
        side=Side.BUY if n % 2 else Side.SELL,
        fill_price=Decimal("40120.10000001") + n,
        fill_quantity=Decimal("0.00000003"),
    )


@pytest.fixture
def written(topics: KafkaSettings, registry_settings: RegistrySettings) -> list[OrderFilled]:
    """60 fills committed, one aborted transaction, one cancel and one undecodable record on `executions`."""
    client = registry_client(registry_settings)
    register_all(client, topics.topic_prefix)
    serializer = EventSerializer(client, "executions", topic_prefix=topics.topic_prefix)
    fills = [fill(n) for n in range(60)]
    producer = kafka.producer(topics, **{"transactional.id": f"{topics.topic_prefix}writer"})
    producer.init_transactions(30)
    for batch in (fills[:30], fills[30:]):
        producer.begin_transaction()
        for event in batch:
            producer.produce(
                serializer.topic,
                key=event.key.encode(),
                value=serializer.serialize(event),
                timestamp=event_time_ms(event),
            )
        producer.commit_transaction(30)
    aborted = dataclasses.replace(fill(100), order_id="ord-aborted", fill_id="fill-aborted")
    producer.begin_transaction()
    producer.produce(
        serializer.topic, key=b"BTCUSDT", value=serializer.serialize(aborted), timestamp=event_time_ms(aborted)
    )
    producer.abort_transaction(30)
    producer.begin_transaction()
    cancel = order_cancelled(
        envelope=envelope(type(order_cancelled()), occurred_at=START + timedelta(seconds=61)), instrument="BTCUSDT"
    )
    producer.produce(
        serializer.topic, key=b"BTCUSDT", value=serializer.serialize(cancel), timestamp=event_time_ms(cancel)
    )
    at = event_time_ms(fills[-1]) + 2000
    garbage = b"\x00" + (999_999).to_bytes(4, "big") + b"not an event"  # framed, but no such schema
    producer.produce(serializer.topic, key=b"BTCUSDT", value=garbage, timestamp=at)
    producer.commit_transaction(30)
    return fills


def replay(endpoints: Endpoints, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    return subprocess.run([tradecore, "replay", *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_whole_topic_to_parquet_keeps_every_committed_event_exact_in_event_time_order(
    written: list[OrderFilled], topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    out = tmp_path / "executions.parquet"
    done = replay(endpoints, topics.topic_prefix, "--topic", "executions", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "read 62 records, wrote 62 rows" in done.stderr
    assert "1 did not decode" in done.stderr

    frame = pl.read_parquet(out)
    assert frame.schema["fill_price"] == pl.Decimal(38, 8)
    events = frame.filter(pl.col("error").is_null())
    # Merged across partitions by event time; nothing of the aborted transaction.
    assert events["order_id"].to_list() == [f.order_id for f in written] + ["ord-1f3a"]
    assert events["fill_price"].to_list()[:60] == [f.fill_price for f in written]
    assert events["fill_quantity"][0] == Decimal("0.00000003")
    assert len({p for p in events["partition"].to_list()}) > 1
    [bad] = frame.filter(pl.col("error").is_not_null()).to_dicts()
    assert "schema id 999999 is not in the registry" in bad["error"] and bad["raw_value"] and bad["key"] == "BTCUSDT"


def test_a_time_range_with_filters_streams_json_lines(
    written: list[OrderFilled], topics: KafkaSettings, endpoints: Endpoints
) -> None:
    done = replay(
        endpoints,
        topics.topic_prefix,
        *("--topic", "executions", "--out", "-"),
        *("--from", (START + timedelta(seconds=10)).isoformat(), "--to", "2021-01-08T10:00:40Z"),
        *("--filter", "instrument=BTCUSDT", "--filter", "instrument=ETHUSDT", "--filter", "side=BUY"),
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [
        f for f in written[10:40] if f.instrument in ("BTCUSDT", "ETHUSDT") and f.side is Side.BUY
    ]  # [from, to): 10:00:10 included, 10:00:40 not
    assert [r["fill_id"] for r in rows] == [f.fill_id for f in expected]
    assert [Decimal(r["fill_price"]) for r in rows] == [f.fill_price for f in expected]
    assert rows[0]["fill_price"] == format(expected[0].fill_price, "f")  # exact text, not a float


def test_an_offset_range_of_one_partition_to_csv(
    written: list[OrderFilled], topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    everything = replay(endpoints, topics.topic_prefix, "--topic", "executions")
    rows = [json.loads(line) for line in everything.stdout.splitlines()]
    partition = rows[0]["partition"]
    mine = [r for r in rows if r["partition"] == partition]
    out = tmp_path / "part.csv"
    done = replay(
        endpoints,
        topics.topic_prefix,
        *("--topic", "executions", "--partition", str(partition), "--from", "2", "--to", "5", "--out", str(out)),
    )
    assert done.returncode == 0, done.stderr
    frame = pl.read_csv(out, infer_schema=False)
    assert frame["offset"].to_list() == [str(r["offset"]) for r in mine if 2 <= r["offset"] < 5]
    assert frame["fill_price"].to_list() == [r["fill_price"] for r in mine if 2 <= r["offset"] < 5]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--topic", "executions", "--filter", "colour=red"), "no field 'colour' to filter on"),
        (("--topic", "executions", "--from", "yesterday"), "neither an offset nor an ISO 8601 time"),
        (("--topic", "executions", "--from", "2021-01-08T10:00:00"), "has no zone"),
        (("--topic", "executions", "--out", "x.xlsx"), "end it in .parquet or .csv"),
        (("--topic", "deadletter"), "holds no events to replay"),
        (("--topic", "executions", "--partition", "99"), "not [99]"),
    ],
)
def test_bad_arguments_are_named(
    args: tuple[str, ...], says: str, topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    done = replay(endpoints, topics.topic_prefix, *args)
    assert done.returncode == 1
    assert says in done.stderr, done.stderr


def test_ctrl_c_stops_cleanly_with_what_was_read(
    topics: KafkaSettings, registry_settings: RegistrySettings, endpoints: Endpoints
) -> None:
    append(topics, registry_client(registry_settings), [fill(n) for n in range(5000)])

    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": topics.topic_prefix}
    tradecore = str(Path(sys.executable).with_name("tradecore"))
    proc = subprocess.Popen(
        [tradecore, "replay", "--topic", "executions"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = [json.loads(proc.stdout.readline()) for _ in range(100)]  # it is mid-way: the pipe holds it back
    proc.send_signal(signal.SIGINT)
    rest = proc.stdout.read()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = first + [json.loads(line) for line in rest.splitlines()]  # every line whole
    assert 100 <= len(lines) < 5000
    assert f"interrupted: read {len(lines):,} records, wrote {len(lines):,} rows" in stderr


def test_the_parquet_holds_what_the_per_record_path_reads_from_the_same_log(
    written: list[OrderFilled],
    topics: KafkaSettings,
    registry_settings: RegistrySettings,
    endpoints: Endpoints,
    tmp_path: Path,
) -> None:
    """Batch decoding changes how fast, not what: every row and column equal to the record-by-record reading
    (fastavro per value, the merger per record), but the undecodable record's reason, worded by the other decoder."""
    out = tmp_path / "executions.parquet"
    done = replay(endpoints, topics.topic_prefix, "--topic", "executions", "--out", str(out))
    assert done.returncode == 0, done.stderr

    with TopicReader(topics, registry_client(registry_settings), "executions") as reader:
        rows = [row(record) for record in reader.read(reader.ranges(), Order.TIME)]
    expected = frame(rows, columns("executions"))
    got = pl.read_parquet(out)
    assert got.height == expected.height == 62
    assert got.drop("error").equals(expected.drop("error"))
    assert got["error"].is_null().to_list() == expected["error"].is_null().to_list()
