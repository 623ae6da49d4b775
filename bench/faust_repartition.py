"""The executions-by-account repartition as a faust-streaming app, for bench/faust_kill.py (not part of tradecore).

    TRADECORE_TOPIC_PREFIX=bench-x. .venv/bin/python bench/faust_repartition.py worker --without-web

Reads ``<prefix>executions`` (key: instrument), decodes each record with the same deserializer as
``streams.repartition`` to find its account, and sends the unchanged bytes to ``<prefix>executions.by-account``
keyed by account, with ``processing_guarantee="exactly_once"``. Its consumer group, internal topics and
transactional ids all start with the prefix, so the namespace holds everything it leaves behind. Connection
settings come from the same environment variables as ``tradecore worker``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faust  # noqa: E402

from schemas.serde import EventDeserializer  # noqa: E402
from schemas.settings import RegistrySettings  # noqa: E402
from streams.kafka.registry import registry_client  # noqa: E402
from streams.settings import KafkaSettings  # noqa: E402

settings = KafkaSettings()
decode = EventDeserializer(registry_client(RegistrySettings()), "executions", topic_prefix=settings.topic_prefix)

app = faust.App(
    f"{settings.topic_prefix}faust-executions-by-account",
    broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
    processing_guarantee="exactly_once",
    store="memory://",
    web_enabled=False,
    # Static membership, as our host has: a restarted worker takes its partitions back at once instead of
    # waiting for the killed member's session to expire (a short session too, should the broker wait anyway).
    consumer_group_instance_id=f"{settings.topic_prefix}faust-executions-by-account-0",
    broker_session_timeout=10.0,
    # Commit (end the transaction) every 0.5 s rather than faust's 2.8 s: closer to our host's per-batch commits,
    # and less uncommitted work for a kill to expose.
    broker_commit_interval=0.5,
    topic_partitions=settings.partitions,
    consumer_auto_offset_reset="earliest",
)
executions = app.topic(
    f"{settings.topic_prefix}executions", key_type=bytes, value_type=bytes, value_serializer="raw", internal=False
)
by_account = app.topic(
    f"{settings.topic_prefix}executions.by-account", key_type=bytes, value_type=bytes, value_serializer="raw"
)


@app.agent(executions)  # type: ignore[untyped-decorator]  # faust ships no type hints for its decorators
async def repartition(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
    async for event in stream.events():
        account: str = getattr(decode.deserialize(event.value), "account_id")  # noqa: B009 - every execution has one
        await by_account.send(key=account.encode(), value=event.value, key_serializer="raw", value_serializer="raw")
        yield None


if __name__ == "__main__":
    app.main()
