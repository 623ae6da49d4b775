"""Risk's decisions as the API sees them: `POST /v1/orders?wait=ACCEPTED` waits, bounded, for the order's
OrderAccepted or OrderRejected on `orders.checked`.

One background consumer per API process follows `orders.checked` from its end (read_committed, no consumer group:
nothing to commit), and settles the futures of waiting requests. Decisions that arrive before their request starts
waiting are kept for a while, so none is missed.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from domain.lifecycle import INITIAL, OrderStatus, next_status
from schemas.contract_errors import EventDecodeError
from schemas.events import OrderAccepted, OrderRejected
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer
from streams.kafka import OFFSET_END, KafkaSettings
from streams.kafka.logreader import LogReader

KEEP = 100_000  # recent decisions remembered for requests that start waiting late


@dataclass(frozen=True)
class Decision:
    status: OrderStatus  # ACCEPTED or REJECTED: where risk's decision moves a PENDING order
    reason_code: str | None = None
    reason: str | None = None


class RiskOutcomes:
    def __init__(self, settings: KafkaSettings, registry: SchemaRegistry) -> None:
        self._settings = settings
        self._decode = EventDeserializer(registry, "orders.checked", topic_prefix=settings.topic_prefix)
        self._recent: OrderedDict[str, Decision] = OrderedDict()
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Decision]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="risk-outcomes", daemon=True)
        self._ready = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    async def wait(self, order_id: str, timeout_s: float) -> Decision | None:
        """The order's decision, or None if risk has not decided within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Decision] = loop.create_future()
        with self._lock:
            known = self._recent.get(order_id)
            if known is not None:
                return known
            self._waiting.setdefault(order_id, []).append((loop, future))
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return None
        finally:
            with self._lock:
                waiters = self._waiting.get(order_id, [])
                if (loop, future) in waiters:
                    waiters.remove((loop, future))
                if not waiters:
                    self._waiting.pop(order_id, None)

    def _follow(self) -> None:
        topic = self._settings.topic_prefix + "orders.checked"
        reader = LogReader(self._settings, f"api-outcomes-{uuid.uuid4()}", **{"auto.offset.reset": "latest"})
        reader.assign(dict.fromkeys(reader.partitions([topic]), OFFSET_END))
        self._ready.set()
        try:
            while not self._stop.is_set():
                for record in reader.batch(500, 0.2):
                    try:
                        event = self._decode.deserialize(record.value)
                    except EventDecodeError:
                        continue  # not ours to judge; the processors dead-letter it
                    if isinstance(event, OrderAccepted):
                        self._settle(event.order_id, Decision(next_status(INITIAL, event)))
                    elif isinstance(event, OrderRejected):
                        self._settle(
                            event.order_id, Decision(next_status(INITIAL, event), event.reason_code, event.reason)
                        )
        finally:
            reader.close()

    def _settle(self, order_id: str, decision: Decision) -> None:
        with self._lock:
            self._recent[order_id] = decision
            if len(self._recent) > KEEP:
                self._recent.popitem(last=False)
            for loop, future in self._waiting.pop(order_id, []):
                loop.call_soon_threadsafe(_resolve, future, decision)


def _resolve(future: asyncio.Future[Decision], decision: Decision) -> None:
    if not future.done():
        future.set_result(decision)
