"""tradecore's batch Avro body reader (src/lib.rs); used by schemas/batch/native.py."""

def decode(
    buf: bytes,
    starts: bytes,
    ends: bytes,
    ops: list[tuple[int, str, int]],
    name: str,
    min_micros: int,
    max_micros: int,
) -> tuple[bytes, list[tuple[int, str]], list[tuple[bytes | None, bytes, bytes | None]]] | None: ...
