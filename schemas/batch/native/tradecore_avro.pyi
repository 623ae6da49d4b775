"""tradecore's batch Avro reader and writer, and uuid5 in bulk (src/); used by schemas/batch/."""

from typing import Any

def decode(
    buf: bytes,
    starts: bytes,
    ends: bytes,
    ops: list[tuple[int, str, int]],
    name: str,
    min_micros: int,
    max_micros: int,
) -> tuple[bytes, list[tuple[int, str]], list[tuple[bytes | None, bytes, bytes | None]]] | None: ...
def encode(
    header: bytes,
    rows: int,
    leaves: list[tuple[int, bytes | None, bytes, bytes | None]],
) -> list[bytes]: ...
def uuid5(namespace: bytes, names: bytes, offsets: bytes) -> bytes: ...

class RecordPlan:
    def __init__(self, leaves: list[tuple[list[str], int, int, list[str]]]) -> None: ...
    def encode(self, header: bytes, records: list[Any]) -> list[bytes]: ...
