"""A fetched batch of input records decoded at once: per input topic, one ``BatchDecoder`` call over all its values,
then each event type's rows built into events column by column (``schemas.batch.objects``).

Records keep their place: what comes back is one ``Decoded`` per record, in the order given (the merger then
interleaves them exactly as it did the raw records). A value that does not decode carries its reason instead of an
event — the handler dead-letters it — and the rest of the batch decodes.

A batch codec call has a fixed cost (polars, per event type and column): a lone tick costs 2.4 ms that way against
53 µs through fastavro, while 200 cost 19 µs each and 1,000 12 µs (CPU, this machine). So a topic's share of a
fetch smaller than ``SMALL`` is decoded record by record with ``EventDeserializer`` — what a live host sees at a
trickle, where latency matters — and anything larger as a batch. Both give equal events
(tests/streams/host/test_decoding.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from schemas.batch import INDEX, BatchDecoder
from schemas.batch.objects import EventBuilder
from schemas.batch.registry import writers
from schemas.contract_errors import EventDecodeError
from schemas.events import Event, events_on
from schemas.registry import SchemaRegistry
from schemas.serde import EventDeserializer
from streams.host.inputs import Inputs
from streams.kafka.logreader import RawRecord

# Internal topics carry another topic's events unchanged.
EVENTS_OF = {"executions.by-account": "executions"}

SMALL = 50  # records of one topic in a fetch below which per-record decoding costs less (measured, see above)


class Decoded(NamedTuple):
    """An input record and its event, or (``event`` None) why it is not one. A named tuple: one is made per record,
    and frozen dataclasses' ``__init__`` showed in the host's profile (py-spy, signals: 7 % of its samples)."""

    record: RawRecord
    event: Event | None
    reason: str = ""


class InputDecoder:
    """Decodes batches of records of a processor's ``inputs``, with the writer schemas ``registry`` holds;
    ``small``: a topic's records in a batch below this many are decoded one by one."""

    def __init__(self, inputs: Inputs, registry: SchemaRegistry, small: int = SMALL) -> None:
        self._small = small
        lookup = writers(registry)
        self._decoders: dict[str, BatchDecoder] = {}
        self._singles: dict[str, EventDeserializer] = {}
        self._builders: dict[str, EventBuilder] = {}
        for topic in inputs.topics:
            name = inputs.name(topic)
            events = events_on(EVENTS_OF.get(name, name))
            for cls in events:
                self._builders[cls.__name__] = EventBuilder(cls)  # a class that drifted fails here, at start-up
            self._decoders[topic] = BatchDecoder(lookup, events)
            self._singles[topic] = EventDeserializer(registry, EVENTS_OF.get(name, name), topic_prefix=inputs.prefix)

    def decode(self, records: Sequence[RawRecord]) -> list[Decoded]:
        """Each of ``records`` decoded, in the same order.

        Raises:
            RegistryUnavailableError: the registry could not be asked for a writer's schema; retry.
        """
        by_topic: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            by_topic.setdefault(record.topic, []).append(i)
        found: dict[int, Decoded] = {}
        for topic, places in by_topic.items():
            if len(places) < self._small:
                found.update((i, self._single(topic, records[i])) for i in places)
                continue
            batch = self._decoders[topic].decode([records[i].value for i in places])
            for bad in batch.malformed:
                found[places[bad.index]] = Decoded(records[places[bad.index]], None, f"{topic}: {bad.reason}")
            for name, frame in batch.frames.items():
                built = self._builders[name].events(frame)
                for index, event in zip(frame.get_column(INDEX).to_list(), built, strict=True):
                    record = records[places[index]]
                    found[places[index]] = (
                        Decoded(record, None, f"{topic}: {event}") if isinstance(event, str) else Decoded(record, event)
                    )
        return [found[i] for i in range(len(records))]  # every value is in a frame or malformed

    def _single(self, topic: str, record: RawRecord) -> Decoded:
        try:
            return Decoded(record, self._singles[topic].deserialize(record.value))
        except EventDecodeError as err:
            return Decoded(record, None, str(err))
