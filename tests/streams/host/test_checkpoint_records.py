"""A checkpoint's records: chunked below the broker's message size, read back whole, and refused when unreadable."""

from __future__ import annotations

import json

from streams.host.checkpoints import CHUNK_BYTES, VERSION, Checkpoint, Incomplete, Unreadable, latest_of, records

STATE = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 7)  # a little over two chunks


def checkpoint(state: bytes = STATE, journal: int | None = 41) -> Checkpoint:
    return Checkpoint(3, state, {("orders", 3): 120, ("ticks", 0): 77}, journal)


def test_a_large_state_is_cut_into_chunks_below_the_message_size_and_read_back_whole() -> None:
    written = records(checkpoint())
    assert len(written) == 4  # three chunks, then the manifest
    assert all(len(value) <= CHUNK_BYTES for _, value, _ in written)
    assert latest_of(3, written) == checkpoint()


def test_the_last_complete_checkpoint_wins_and_stale_chunks_of_an_earlier_one_are_ignored() -> None:
    newer = checkpoint(b"small state", journal=99)
    assert latest_of(3, records(checkpoint()) + records(newer)) == newer


def test_a_manifest_of_another_version_is_unreadable() -> None:
    *chunks, (key, manifest, headers) = records(checkpoint())
    later = json.dumps({**json.loads(manifest), "version": VERSION + 1}).encode()
    found = latest_of(3, [*chunks, (key, later, headers)])
    assert isinstance(found, Unreadable) and f"version {VERSION + 1}" in str(found)


def test_a_manifest_whose_chunks_were_not_read_is_incomplete() -> None:
    written = records(checkpoint())
    assert isinstance(latest_of(3, written[1:]), Incomplete)


def test_damaged_bytes_do_not_pass_the_digest() -> None:
    (key, value, headers), *rest = records(checkpoint())
    found = latest_of(3, [(key, b"x" + value[1:], headers), *rest])
    assert isinstance(found, Unreadable) and "digest" in str(found)
