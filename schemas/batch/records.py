"""A few records to framed values through the Rust writer (``schemas/batch/native/src/records.rs``), without a
frame: what one command's event or a group commit's orders cost. An ``OrderPlaced`` took ≈ 30 µs through
``to_avro`` and fastavro's per-record writer (Avro was 8 % of an order's CPU in the API), 11 µs through this; building
a frame for the batch encoder costs more than either for a handful of rows (bench/order_entry.py, "group commit
encoding").

The records are fastavro's values (``schemas.codec.to_avro``), and the bytes are fastavro's: each leaf of a flat
schema (``native.flat``: no map, unions only around a leaf) read from the records by its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import tradecore_avro

from schemas.batch import native, nodes

_Leaf = tuple[list[str], int, int, list[str]]  # path, kind (+ OPTIONAL), decimal scale, enum symbols


class RecordWriter:
    """Framed values of records of one flat schema; raises ``ValueError`` for a schema that is not flat."""

    def __init__(self, node: nodes.Record, header: bytes) -> None:
        if not native.flat(node):
            raise ValueError(f"{node.name} is not flat (a map, or a union around a record): the Rust writer takes no")
        self._header = header
        leaves: list[_Leaf] = []
        _walk(node, [], leaves)
        self._plan = tradecore_avro.RecordPlan(leaves)

    def encode(self, records: Sequence[Mapping[str, Any]]) -> list[bytes]:
        """Each record's value: the header, then its body. Raises ``ValueError`` naming a field whose value does not
        fit it (a decimal with more places than its scale, a naive time, a symbol not of its enum), ``KeyError`` for
        a field a record lacks."""
        values: list[bytes] = self._plan.encode(self._header, list(records))
        return values


def _walk(node: nodes.Node, path: list[str], leaves: list[_Leaf]) -> None:
    if isinstance(node, nodes.Record):
        for field in node.fields:
            _walk(field.node, [*path, field.name], leaves)
        return
    optional = isinstance(node, nodes.Optional)
    leaf = node.value if isinstance(node, nodes.Optional) else node
    scale = leaf.scale if isinstance(leaf, nodes.Decimal) else 0
    symbols = list(leaf.symbols) if isinstance(leaf, nodes.Enum) else []
    leaves.append((path, native.kind_of(leaf) + (native.OPTIONAL if optional else 0), scale, symbols))
