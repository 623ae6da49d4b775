"""Checkpoints: a task's state and where its inputs stand, in the compacted ``<processor>.checkpoints`` topic.

A checkpoint is written inside the transaction whose outputs and input offsets it covers, so it is exactly as
committed as they are; ``read_committed`` never sees one of an aborted transaction. Partition ``p`` of the topic
holds the checkpoints of input partition ``p``'s task:

* chunks, keyed ``<p>/<i>``: the snapshot's bytes cut in ``CHUNK_BYTES`` pieces (so that no record comes near the
  broker's ``message.max.bytes``), each with the checkpoint's id in the ``tradecore.checkpoint`` header;
* then the manifest, keyed ``<p>``: a versioned JSON envelope naming the id, the chunk count and digest, the input
  offsets the state covers (partitioned inputs: the next offset; broadcast inputs: this task's own position) and
  where the task's journal goes on.

Compaction keeps the latest manifest and the latest chunk of each index, which are the latest checkpoint's. Why
JSON for the envelope: it is a handful of fields read once per assignment, human-readable with any console
consumer, and its ``version`` says how to read the rest; the state inside is each engine's own canonical snapshot,
which carries its own format and refuses one it cannot read (``UnreadableSnapshot``). Either refusal means a full
replay of that partition, logged and counted — never a wrong state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from streams.errors import StreamsError
from streams.kafka import KafkaSettings
from streams.kafka.logreader import BOUNDED, LogReader, Position

FORMAT = "tradecore.checkpoint"
VERSION = 1
CHUNK_BYTES = 512 * 1024  # half the broker's default message.max.bytes: a chunk plus headers always fits
HEADER = "tradecore.checkpoint"
_FIRST_WINDOW = 64  # offsets read back from the end at first to find the latest manifest (then 4 times more)

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


@dataclass(frozen=True)
class Checkpoint:
    """A task's state and the input positions it covers (topic names without the namespace)."""

    partition: int
    state: bytes
    offsets: dict[Position, int]  # the next offset of each input partition (broadcast ones: the task's own)
    journal: int | None  # the offset in the task's journal partition to follow on from; None without a journal


class Unreadable(Exception):
    """A checkpoint this code cannot read (an envelope of another version, chunks missing or damaged)."""


class Incomplete(Unreadable):
    """A manifest whose chunks were not all read: read further back, or (from the start) the checkpoint is damaged."""


def records(checkpoint: Checkpoint) -> list[Record]:
    """The chunks, then the manifest, that hold ``checkpoint``."""
    state = checkpoint.state
    offsets = sorted([topic, partition, offset] for (topic, partition), offset in checkpoint.offsets.items())
    digest = hashlib.sha256(state).hexdigest()
    ident = hashlib.sha256(json.dumps([offsets, checkpoint.journal, digest]).encode()).hexdigest()[:32]
    header = [(HEADER, ident.encode())]
    pieces = [state[i : i + CHUNK_BYTES] for i in range(0, len(state), CHUNK_BYTES)] or [b""]
    p = checkpoint.partition
    out: list[Record] = [(f"{p}/{i}".encode(), piece, header) for i, piece in enumerate(pieces)]
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "id": ident,
        "partition": p,
        "chunks": len(pieces),
        "size": len(state),
        "sha256": digest,
        "offsets": offsets,
        "journal": checkpoint.journal,
    }
    out.append((str(p).encode(), json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), header))
    return out


def load(
    settings: KafkaSettings, reader: str, topic: str, partition: int, stall_s: float | None = None
) -> Checkpoint | Unreadable | None:
    """The latest committed checkpoint of ``partition`` (None if none was written).

    Raises:
        ReadStalled: reading made no progress for ``stall_s`` (when given).
    """
    log = LogReader(settings, reader, **BOUNDED)
    try:
        return _latest(log, (topic, partition), stall_s)
    finally:
        log.close()


def _latest(log: LogReader, position: Position, stall_s: float | None) -> Checkpoint | Unreadable | None:
    """Reads back from the end in growing windows until a complete checkpoint (or the start) is found."""
    # A leader moving (a broker failing over) cannot say where the partition ends for a moment: asked again.
    retrying = Retrying(
        retry=retry_if_exception_type(StreamsError), stop=stop_after_delay(30), wait=wait_fixed(0.5), reraise=True
    )
    low, high = retrying(log.bounds, position)
    window = _FIRST_WINDOW
    while True:
        start = max(low, high - window)
        if start >= high:
            return None
        log.assign({position: start})
        # Taken as they come, not gathered first: a window holds older checkpoints' chunks too, and six partitions
        # restored side by side had each held its whole window (10-20 MB apiece, the restart's peak).
        read = (
            (r.key, r.value, r.headers or []) for batch in log.read({position: high}, stall_s=stall_s) for r in batch
        )
        latest = latest_of(position[1], read)
        if (latest is not None and not isinstance(latest, Incomplete)) or start == low:
            return latest
        window *= 4


def latest_of(
    partition: int, read: Iterable[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]
) -> Checkpoint | Unreadable | None:
    """The last complete checkpoint among records of ``partition`` read in offset order (None if none is)."""
    latest: Checkpoint | Unreadable | None = None
    chunks: dict[int, tuple[bytes, bytes]] = {}  # index -> (checkpoint id, bytes)
    for key, value, headers in read:
        name = (key or b"").decode(errors="replace")
        ident = dict(headers).get(HEADER, b"")
        if "/" in name:
            chunks[int(name.split("/", 1)[1])] = (ident, value or b"")
        else:
            latest = _assemble(partition, value or b"", ident, chunks)
    return latest


def _assemble(
    partition: int, manifest: bytes, ident: bytes, chunks: dict[int, tuple[bytes, bytes]]
) -> Checkpoint | Unreadable:
    try:
        envelope = json.loads(manifest)
        if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
            return Unreadable(f"not a {FORMAT} manifest")
        if envelope.get("version") != VERSION:
            return Unreadable(f"envelope version {envelope.get('version')!r}; this code reads {VERSION}")
        pieces = []
        for i in range(int(envelope["chunks"])):
            held = chunks.get(i)
            if held is None or held[0] != ident:
                return Incomplete(f"chunk {i} of checkpoint {envelope['id']} is missing")
            pieces.append(held[1])
        state = b"".join(pieces)
        if hashlib.sha256(state).hexdigest() != envelope["sha256"]:
            return Unreadable(f"checkpoint {envelope['id']} does not match its digest")
        offsets = {(str(t), int(p)): int(o) for t, p, o in envelope["offsets"]}
        journal = envelope["journal"]
        return Checkpoint(partition, state, offsets, None if journal is None else int(journal))
    except (ValueError, KeyError, TypeError) as err:
        return Unreadable(f"damaged manifest: {err!r}")
