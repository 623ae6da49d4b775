"""The state of an account as of a past moment, folded from the log — not read from any current table.

Only the partitions that hold the account are read: its partition of ``orders`` and of ``executions.by-account``
(both keyed by account; the partition is computed as the producers' murmur2 partitioner computes it), and the
partitions of ``orders.checked`` (keyed by instrument) of the instruments it placed orders in. Each is read from its
start up to its first record stamped after ``as_of`` (record timestamps are event time), and the events are folded
in event-time order, ties in causal order (an order before risk's decision before its executions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.events import Event, OrderPlaced, PositionChanged
from schemas.registry import SchemaRegistry
from streams.host.merge import Stamped
from streams.kafka import KafkaSettings
from streams.replay.account import AccountFold, OrderState
from streams.replay.keys import partition_for
from streams.replay.reader import Order, Record, TopicReader, millis

# In causal order: it breaks ties between events of the same event time (derived events keep their trigger's time).
TOPICS = ("orders", "orders.checked", "executions.by-account")


@dataclass(frozen=True)
class AccountState:
    account_id: str
    as_of: datetime
    positions: list[PositionChanged]  # per instrument, the position its last fill up to as_of left
    open_orders: list[OrderState]  # in the order they were placed
    records_read: int


class AccountHistory:
    """Computes account states as of any moment from a namespace's topics."""

    def __init__(self, settings: KafkaSettings, registry: SchemaRegistry) -> None:
        self._settings = settings
        self._registry = registry

    def state(self, account_id: str, as_of: datetime) -> AccountState:
        """Positions and open orders of ``account_id`` after every event that occurred at or before ``as_of``.

        Raises:
            ReplayError: Kafka could not be read.
            RegistryUnavailableError: the registry could not be asked for a writer's schema.
        """
        # Records stamped up to as_of's millisecond may hold it; the first stamped after it ends the partition.
        until = millis(as_of) + 1
        found: list[Stamped[Event]] = []
        read = 0
        instruments: set[str] = set()
        for rank, topic in enumerate(TOPICS):
            with TopicReader(self._settings, self._registry, topic) as reader:
                if topic == "orders.checked":  # keyed by instrument: the account's records are told by their field
                    key, partitions = None, sorted({partition_for(i, len(reader.partitions)) for i in instruments})
                else:  # keyed by account: other accounts' records are skipped undecoded
                    key, partitions = account_id, [partition_for(account_id, len(reader.partitions))]
                ranges = reader.ranges(None, None, partitions)
                for record in reader.read(ranges, Order.PARTITION, until=until, key=key):
                    read += 1
                    event = _of_account(record, account_id, as_of)
                    if event is None:
                        continue
                    if isinstance(event, OrderPlaced):
                        instruments.add(event.instrument)
                    found.append(Stamped(record.timestamp, rank, record.partition, record.offset, event))
        fold = AccountFold(account_id)
        for stamped in sorted(found):  # event time, then causal rank, partition, offset
            fold.apply(stamped.item)
        return AccountState(
            account_id=account_id,
            as_of=as_of,
            positions=[fold.positions[i] for i in sorted(fold.positions)],
            open_orders=[o for o in fold.orders.values() if o.open],
            records_read=read,
        )


def _of_account(record: Record, account_id: str, as_of: datetime) -> Event | None:
    event = record.event
    if event is None or getattr(event, "account_id", None) != account_id or event.envelope.occurred_at > as_of:
        return None
    return event
