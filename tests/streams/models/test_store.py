"""The model file: the same training writes the same bytes, its id is its sha256, and a file that could run code on
load (types skops does not trust) is refused before anything in it is built."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from domain.signals.features import FEATURES
from streams.models import store
from streams.models.errors import ModelFileError
from tests.streams.models.support import CONFIG, SCIKIT_LEARN, binance, model_file

if TYPE_CHECKING:
    from streams.models.training import Kind

# skops and scikit-learn are imported in the tests that use them, not when the module is collected (support.py).
pytestmark = SCIKIT_LEARN


@pytest.mark.parametrize("kind", ["logistic", "gbm"])
def test_training_with_the_same_seed_writes_the_same_bytes(kind: Kind, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = model_file(tmp_path / "a", kind, seed=3)
    second = model_file(tmp_path / "b", kind, seed=3)

    assert first.read_bytes() == second.read_bytes()
    rows = binance().rows[:40]
    assert np.array_equal(store.load(first).score(rows), store.load(second).score(rows))


def test_the_id_is_the_sha256_of_the_file_and_a_changed_model_has_another(tmp_path: Path) -> None:
    whole = store.load(model_file(tmp_path))
    part = store.load(model_file(tmp_path, rows=120))

    assert whole.model_id == hashlib.sha256(whole.path.read_bytes()).hexdigest()
    assert part.model_id != whole.model_id
    assert whole.features == CONFIG


def test_a_file_with_types_skops_does_not_trust_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # The classic attack on a pickled model: a step that calls os.system when the model is used.
    hostile = make_pipeline(FunctionTransformer(os.system))
    path = tmp_path / "hostile.skops"
    sio.dump({"format": store.FORMAT, "version": store.VERSION, "features": list(FEATURES), "estimator": hostile}, path)

    with pytest.raises(ModelFileError, match=r"types that are not trusted: .*system"):
        store.load(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a skops model file"),
        (b"PK\x03\x04 half a zip", "not a skops model file"),
        # A document: written by skops in the test.
        ({"format": "someone-else"}, "not a tradecore model"),
        ({"format": store.FORMAT, "version": 99}, "format version 99"),
        ({"format": store.FORMAT, "version": 1, "features": ["rsi"]}, "trained on features"),
    ],
)
def test_a_file_that_is_not_one_of_our_models_is_refused_with_the_reason(
    content: bytes | dict[str, Any], message: str, tmp_path: Path
) -> None:
    import skops.io as sio

    path = tmp_path / "model.skops"
    path.write_bytes(content if isinstance(content, bytes) else sio.dumps(content))
    with pytest.raises(ModelFileError, match=message):
        store.load(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="cannot read the model file"):
        store.load(tmp_path / "nowhere.skops")
