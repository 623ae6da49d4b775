"""Codec benchmark (issue 16): the batch Avro codec (``schemas.batch``) against fastavro record by record, on real
ticks, in the same run, on one core.

    .venv/bin/python bench/codec.py                   # 50,000 ticks in batches of 10,000, 5 repeats (≈ 1 min)
    .venv/bin/python bench/codec.py --ticks 20000 --repeat 3

The ticks are the recorded Binance BTCUSDT quotes (data/market, 451 quotes) cycled a day apart per
pass, as ``TickIngested`` events with their own ids and sequences, as ``tradecore ingest file`` writes them.
Measured, each ``--repeat`` times (median, min-max; wall time and this process's CPU time):

* encode: ``BatchEncoder.encode`` of a frame of ``--batch`` ticks -> framed values (list of bytes);
  reference: fastavro ``schemaless_writer`` per record of the already-converted dicts, plus the 5-byte header;
* decode: ``BatchDecoder.decode`` of ``--batch`` values -> a polars frame;
  reference: fastavro ``schemaless_reader`` per record with the reader schema (logical types), as processors do;
* the engine not chosen: ``polars.read_avro`` over an in-memory object container holding the same bodies (no
  per-record framing or trailing-bytes check is possible there).

polars runs on one thread (POLARS_MAX_THREADS=1, set before it is imported) so the figures are one core's.
The batch encoder's bytes are checked identical to fastavro's before anything is timed.
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before polars is imported: it reads the limit once

import argparse
import io
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import fastavro
import numpy as np
import polars as pl

from schemas import avsc, codec
from schemas.batch import BatchDecoder, BatchEncoder, wire
from schemas.events import TickIngested, new_envelope
from streams.ingest.recorded import market_file
from streams.runtime import tune_collector

QUOTES = market_file("binance-btcusdt-quotes-2021-01-08.parquet")
SCHEMA_ID = 7  # any id: the codec is measured alone, the registry is not asked
_NAMESPACE = uuid.UUID("2f6b2d1c-52f4-4f0e-9d65-1c1f0c7b9a11")


def ticks(count: int) -> list[TickIngested]:
    quotes = pl.read_parquet(QUOTES).sort("timestamp").to_dicts()
    out = []
    for sequence in range(1, count + 1):
        lap, q = divmod(sequence - 1, len(quotes))
        at = quotes[q]["timestamp"] + timedelta(days=lap)
        event_id = uuid.uuid5(_NAMESPACE, f"BTCUSDT:{sequence}")
        envelope = new_envelope(
            TickIngested,
            event_id=event_id,
            occurred_at=at,
            recorded_at=at,
            correlation_id=str(event_id),
            aggregate_id="BTCUSDT",
            sequence=sequence,
        )
        out.append(
            TickIngested(
                envelope=envelope,
                instrument="BTCUSDT",
                venue="binance",
                bid=_price(quotes[q]["bid"]),
                ask=_price(quotes[q]["ask"]),
                bid_size=_price(quotes[q]["bid_size"]),
                ask_size=_price(quotes[q]["ask_size"]),
                exchange_ts=at,
                source=f"file:{QUOTES.name}",
            )
        )
    return out


def _price(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.00000001"))


def timed(work: Callable[[], object]) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall0, time.process_time() - cpu0


def container(schema: dict[str, Any], bodies: list[bytes]) -> bytes:
    """One Avro object container file holding ``bodies`` as one block."""
    sync = b"\x00" * 16
    meta = {b"avro.schema": json.dumps(schema).encode(), b"avro.codec": b"null"}
    header = bytearray(b"Obj\x01")
    header += _long(len(meta))
    for key, value in meta.items():
        header += _long(len(key)) + key + _long(len(value)) + value
    header += _long(0) + sync
    block = b"".join(bodies)
    return bytes(header) + _long(len(bodies)) + _long(len(block)) + block + sync


def _long(value: int) -> bytes:
    return wire.longs(np.array([value], dtype=np.int64)).data.tobytes()


def run(args: argparse.Namespace) -> dict[str, Any]:
    events = ticks(args.ticks)
    schema = avsc.expanded("TickIngested")
    parsed = fastavro.parse_schema(schema)
    records = [codec.to_avro(event) for event in events]
    header = b"\x00" + SCHEMA_ID.to_bytes(4, "big")

    def fastavro_encode() -> list[bytes]:
        out = []
        for record in records:
            buffer = io.BytesIO()
            buffer.write(header)
            fastavro.schemaless_writer(buffer, parsed, record)
            out.append(buffer.getvalue())
        return out

    values = fastavro_encode()
    decoder = BatchDecoder({SCHEMA_ID: avsc.schema_str("TickIngested")}.get, [TickIngested])
    encoder = BatchEncoder(TickIngested, SCHEMA_ID)
    batches = [values[i : i + args.batch] for i in range(0, len(values), args.batch)]
    frames = [decoder.decode(batch).frames["TickIngested"].drop("index") for batch in batches]
    encoded = [value for frame in frames for value in encoder.encode(frame)]
    if encoded != values:
        raise SystemExit("the batch encoder's bytes differ from fastavro's; not timing a wrong encoder")

    def fastavro_decode() -> None:
        for value in values:
            fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed, parsed)

    bodies = [[value[5:] for value in batch] for batch in batches]
    containers = [container(schema, batch) for batch in bodies]

    cases: dict[str, Callable[[], object]] = {
        "encode_batch": lambda: [encoder.encode(frame) for frame in frames],
        "encode_fastavro": fastavro_encode,
        "decode_batch": lambda: [decoder.decode(batch) for batch in batches],
        "decode_fastavro": fastavro_decode,
        "decode_polars_read_avro": lambda: [pl.read_avro(io.BytesIO(data)) for data in containers],
    }
    results: dict[str, Any] = {}
    for name, work in cases.items():
        runs = [timed(work) for _ in range(args.repeat)]
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        results[name] = {
            "per_s_wall": len(values) / statistics.median(walls),
            "per_s_cpu": len(values) / statistics.median(cpus),
            "per_s_wall_min_max": (len(values) / max(walls), len(values) / min(walls)),
            "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus),
        }
        print(
            f"{name}: {results[name]['per_s_wall']:,.0f}/s wall, {results[name]['per_s_cpu']:,.0f}/s CPU",
            file=sys.stderr,
        )
    results["encode_ratio"] = results["encode_batch"]["per_s_wall"] / results["encode_fastavro"]["per_s_wall"]
    results["decode_ratio"] = results["decode_batch"]["per_s_wall"] / results["decode_fastavro"]["per_s_wall"]
    results["ticks"], results["batch"], results["repeat"] = len(values), args.batch, args.repeat
    results["bytes_per_tick"] = sum(map(len, values)) / len(values)
    return results


def table(r: dict[str, Any]) -> str:
    def row(label: str, key: str, target: str) -> str:
        x = r[key]
        low, high = x["per_s_wall_min_max"]
        return (
            f"| {label} | {target} | {x['per_s_wall']:,.0f} ({low:,.0f}-{high:,.0f}) | {x['per_s_cpu']:,.0f} "
            f"| {x['median_wall_s'] * 1e6 / r['ticks']:.2f} µs |"
        )

    lines = [
        f"{r['ticks']:,} TickIngested ({r['bytes_per_tick']:.0f} bytes each), batches of {r['batch']:,}, "
        f"median of {r['repeat']}, one core",
        "| path | target | records/s wall (min-max) | records/s of CPU | wall per record |",
        "|---|---|---|---|---|",
        row("batch encode (schemas.batch)", "encode_batch", ">= 200,000 and >= 8x fastavro"),
        row("fastavro schemaless_writer per record", "encode_fastavro", "reference"),
        row("batch decode (schemas.batch)", "decode_batch", ">= 300,000"),
        row("fastavro schemaless_reader per record", "decode_fastavro", "reference"),
        row("polars.read_avro over an in-memory container", "decode_polars_read_avro", "engine not chosen"),
        f"encode ratio {r['encode_ratio']:.1f}x fastavro; decode ratio {r['decode_ratio']:.1f}x fastavro",
    ]
    return "\n".join(lines)


def main() -> int:
    tune_collector()  # as every tradecore process does (streams.runtime)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = run(args)
    print(table(results))
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
