"""The Rust reader (``schemas.batch.native``) and the numpy decoder read the same bytes the same way: the same rows,
and for a malformed record the same reason — whichever of the two a batch goes to, a user sees one behaviour."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
import tradecore_avro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import avsc
from schemas.batch import BatchDecoder, nodes
from schemas.batch.decoder import MAX_MICROS, MIN_MICROS
from schemas.batch.native import NativeReader, flat
from schemas.events import EVENT_TYPES
from tests.schemas.batch import reference
from tests.support.properties import example_count

READ_NATIVELY = sorted(
    name
    for name in EVENT_TYPES
    if NativeReader.applies(*[nodes.parse(avsc.expanded(name))] * 2)  # (not those with a map)
)


def both(values: Sequence[bytes | None], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The batch decoded by a decoder reading natively, and by one reading with numpy only."""
    native = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode(values)
    with monkeypatch.context() as patch:
        patch.setattr(NativeReader, "applies", staticmethod(lambda writer, reader: False))
        numpy = BatchDecoder(reference.writers(), EVENT_TYPES.values()).decode(values)
    return native, numpy


def assert_same(native: Any, numpy: Any) -> None:
    assert [(m.index, m.reason) for m in native.malformed] == [(m.index, m.reason) for m in numpy.malformed]
    assert native.frames.keys() == numpy.frames.keys()
    for name, frame in native.frames.items():
        assert frame.schema == numpy.frames[name].schema
        assert frame.equals(numpy.frames[name]), name


def test_most_events_are_read_natively() -> None:
    assert len(READ_NATIVELY) == len(EVENT_TYPES) - 1  # SignalGenerated carries a map


@settings(
    max_examples=example_count(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_cut_or_extended_records_get_the_same_rows_and_reasons(data: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    name = data.draw(st.sampled_from(READ_NATIVELY))
    values: list[bytes | None] = []
    for _ in range(data.draw(st.integers(1, 6))):
        value = reference.framed(avsc.expanded(name), data.draw(reference.events(name)), reference.SCHEMA_IDS[name])
        cut = data.draw(st.integers(5, len(value)))
        junk = data.draw(st.binary(max_size=24))
        values.append(data.draw(st.sampled_from([value, value[:cut], value + junk])))
    assert_same(*both(values, monkeypatch))


@settings(
    max_examples=example_count(200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(name=st.sampled_from(READ_NATIVELY), bodies=st.lists(st.binary(max_size=200), min_size=1, max_size=5))
def test_arbitrary_bodies_get_the_same_rows_and_reasons(
    name: str, bodies: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    header = b"\x00" + reference.SCHEMA_IDS[name].to_bytes(4, "big")
    assert_same(*both([header + body for body in bodies], monkeypatch))


def read(body: bytes, ops: list[tuple[int, str, int]]) -> Any:
    """The Rust reader's answer for one record body."""
    data = body + bytes(16)  # (the zero padding the framing adds)
    return tradecore_avro.decode(
        data, np.array([0]).tobytes(), np.array([len(body)]).tobytes(), ops, "Test", MIN_MICROS, MAX_MICROS
    )


def test_a_decimal_beyond_its_precision_or_a_string_not_utf8_gives_the_batch_back_to_the_numpy_decoder() -> None:
    decimal_18 = [(6, "Test.price", 18)]
    assert read(b"\x02\x01", decimal_18) is not None  # 1
    assert read(b"\x10" + (10**18).to_bytes(8, "big"), decimal_18) is None
    assert read(b"\x02\xff\xfe", [(0, "Test.name", 0)]) is None


def test_a_malformed_record_leaves_no_value_behind() -> None:
    # (one good record around a cut one: the good ones' columns hold exactly their values)
    ops = [(1, "Test.a", 0), (0, "Test.b", 0)]
    good, cut = b"\x02\x04hi", b"\x04\x06x"
    data = good + cut + good + bytes(16)
    starts, ends = np.array([0, 4, 7]), np.array([4, 7, 11])
    found = tradecore_avro.decode(data, starts.tobytes(), ends.tobytes(), ops, "Test", MIN_MICROS, MAX_MICROS)
    assert found is not None
    ok, reasons, columns = found
    assert list(ok) == [1, 0, 1]
    assert reasons == [(1, "truncated: the record ends inside Test.b")]
    assert np.frombuffer(columns[0][1], np.int64).tolist() == [1, 1]
    assert columns[1][1] == b"hihi" and np.frombuffer(columns[1][2] or b"", np.int64).tolist() == [0, 2, 4]


def test_the_rust_codec_leaves_unions_around_records_and_maps_to_numpy() -> None:
    price = nodes.Field("price", nodes.Optional(nodes.Decimal(18, 8)), True, None)
    inner = nodes.Record("Inner", (price,))
    assert flat(nodes.Record("Flat", (price, nodes.Field("inner", inner, False, None))))
    for unflat in (
        nodes.Optional(inner),
        nodes.Map(nodes.Leaf("string")),
        nodes.Optional(nodes.Map(nodes.Leaf("long"))),
    ):
        assert not flat(nodes.Record("Outer", (nodes.Field("x", unflat, True, None),)))
