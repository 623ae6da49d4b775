"""Event ids in bulk equal ``uuid.uuid5`` name for name."""

import uuid

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from domain.derive import ID_NAMESPACE
from schemas.batch.columns import uuid5


@given(st.lists(st.text(max_size=80), max_size=50))
def test_each_id_is_the_uuid5_of_its_name(names: list[str]) -> None:
    ids = uuid5(ID_NAMESPACE, pl.Series(names, dtype=pl.String))
    assert ids.to_list() == [str(uuid.uuid5(ID_NAMESPACE, name)) for name in names]


def test_the_namespace_counts() -> None:
    other = uuid.UUID(int=ID_NAMESPACE.int ^ 1)
    names = pl.Series(["ticks/BTCUSDT/1"])
    assert uuid5(ID_NAMESPACE, names).item() != uuid5(other, names).item() == str(uuid.uuid5(other, "ticks/BTCUSDT/1"))
