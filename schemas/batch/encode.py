"""A frame of events of one type to Confluent-framed record values, in one call."""

from __future__ import annotations

import numpy as np
import polars as pl

from schemas import avsc
from schemas.batch import encoder, framing, native, native_encoder, nodes, wire
from schemas.batch.errors import BatchEncodeError
from schemas.events import Event


class BatchEncoder:
    """Encodes frames of ``event`` rows (columns as ``BatchDecoder`` gives them) under ``schema_id``.

    The bytes are those ``schemas.serde.EventSerializer`` writes for the same events, byte for byte.
    ``schema_id`` is the registry's id of the event's current schema on its topic
    (``schemas.batch.registry.schema_id``).
    """

    def __init__(self, event: type[Event], schema_id: int) -> None:
        self.event = event
        self.node = nodes.parse(avsc.expanded(event.__name__))
        self._header = bytes([framing.MAGIC]) + schema_id.to_bytes(4, "big")
        self._native = native.flat(self.node)  # else numpy: a map, or a union around a record

    def encode(self, frame: pl.DataFrame) -> list[bytes]:
        """One record value per row of ``frame``.

        Raises:
            BatchEncodeError: a column is missing, has nulls where the schema has none, or values that do not fit
                (the message names the field); or an envelope names another event or schema version.
        """
        self._check_envelopes(frame)
        if self._native:
            return native_encoder.encode(self.node, frame, self._header, self.event.__name__)
        bodies = encoder.record(self.node, frame, self.event.__name__)
        header = np.frombuffer(self._header, dtype=np.uint8)
        framed = wire.concat([wire.fixed(np.broadcast_to(header, (frame.height, framing.HEADER))), *bodies])
        offsets = np.zeros(frame.height + 1, dtype=np.int64)
        np.cumsum(framed.lengths, out=offsets[1:])
        buffer = framed.data.tobytes()
        return list(map(buffer.__getitem__, map(slice, offsets[:-1].tolist(), offsets[1:].tolist())))

    def _check_envelopes(self, frame: pl.DataFrame) -> None:
        if "envelope" not in frame.columns or not frame.height:
            return
        envelope = frame.get_column("envelope").struct
        name, version = self.event.__name__, self.event.schema_version()
        if (envelope.field("event_type") != name).any() or (envelope.field("schema_version") != version).any():
            raise BatchEncodeError(
                f"{name}: an envelope names another event or schema version than {name} v{version}",
                hint="build envelopes with schemas.events.new_envelope(<event class>, ...)",
            )
