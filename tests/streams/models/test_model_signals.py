"""The signal engine with a model: one model(<sha256>) signal per closed bar once the features are warm, carrying
the features it was scored on and the model's score; snapshots keep the model's state and refuse another model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from domain.signals import SignalEngine, SnapshotError
from domain.signals.bars import BarBuilder
from domain.signals.features import FEATURES, feature_rows
from schemas.events import Direction, SignalGenerated, TickIngested
from streams.models import store
from streams.models.errors import ModelFileError
from streams.processors import ProcessorSettings, SignalsProcessor
from tests.domain.signals.market import binance_btcusdt
from tests.streams.models.support import CONFIG, SCIKIT_LEARN, model_file

pytestmark = SCIKIT_LEARN

TICKS = binance_btcusdt().ticks


def run(engine: SignalEngine, ticks: list[TickIngested]) -> list[SignalGenerated]:
    return [signal for tick in ticks for signal in engine.handle(tick)]


def model_signals(signals: list[SignalGenerated]) -> list[SignalGenerated]:
    return [s for s in signals if s.indicator.startswith("model(")]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> store.LoadedModel:
    return store.load(model_file(tmp_path_factory.mktemp("model")))


def test_every_warm_closed_bar_is_scored_with_the_features_training_computes(model: store.LoadedModel) -> None:
    builder = BarBuilder(CONFIG.bar_interval_us)
    bars = [bar for tick in TICKS if (bar := builder.add(tick)) is not None]
    _, rows = feature_rows(bars, CONFIG)

    signals = model_signals(run(SignalEngine(CONFIG, model), TICKS))

    assert len(signals) == len(rows) > 100
    assert {s.indicator for s in signals} == {f"model({model.model_id})"}
    emitted = np.array([[s.values[name] for name in FEATURES] for s in signals])
    assert np.array_equal(emitted, rows)
    scores = model.estimator.predict_proba(rows)[:, 1]
    np.testing.assert_allclose([s.values["score"] for s in signals], scores, rtol=1e-12)
    for signal in signals:
        score = signal.values["score"]
        assert signal.direction is (Direction.LONG if score > 0.5 else Direction.SHORT)
        assert signal.strength == pytest.approx(abs(2 * score - 1))
    assert {Direction.LONG, Direction.SHORT} <= {s.direction for s in signals}, "the model must change its mind"


def test_the_crossings_are_what_they_are_without_a_model(model: store.LoadedModel) -> None:
    with_model = run(SignalEngine(CONFIG, model), TICKS)
    without = run(SignalEngine(CONFIG), TICKS)
    crossings = [s for s in with_model if not s.indicator.startswith("model(")]

    assert [(s.indicator, s.direction, s.strength, s.values) for s in crossings] == [
        (s.indicator, s.direction, s.strength, s.values) for s in without
    ]


def test_a_changed_model_file_gives_another_id_in_the_signals(model: store.LoadedModel, tmp_path: Path) -> None:
    other = store.load(model_file(tmp_path, rows=120))
    first = model_signals(run(SignalEngine(CONFIG, model), TICKS[:1500]))
    second = model_signals(run(SignalEngine(CONFIG, other), TICKS[:1500]))

    assert first and len(first) == len(second)
    assert {s.indicator for s in second} == {f"model({other.model_id})"} != {s.indicator for s in first}


def test_a_snapshot_continues_the_model_and_refuses_another(model: store.LoadedModel, tmp_path: Path) -> None:
    ticks = TICKS[:1600]
    uninterrupted = run(SignalEngine(CONFIG, model), ticks)
    engine = SignalEngine(CONFIG, model)
    first = run(engine, ticks[:800])
    snapshot = engine.to_snapshot()

    assert model_signals(first), "the cut must come after the features warmed up"
    assert run(SignalEngine.from_snapshot(snapshot, model), ticks[800:]) == uninterrupted[len(first) :]
    with pytest.raises(SnapshotError, match="taken with model"):
        SignalEngine.from_snapshot(snapshot)
    with pytest.raises(SnapshotError, match="taken with model"):
        SignalEngine.from_snapshot(SignalEngine(CONFIG).to_snapshot(), model)


def test_the_processor_refuses_a_model_trained_on_other_bars(model: store.LoadedModel) -> None:
    settings = ProcessorSettings(signals_model=model.path)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRADECORE_SIGNALS_BAR_INTERVAL", "PT1S")
        with pytest.raises(ModelFileError, match=r"trained on PT0.1S bars, the signals processor cuts PT1S"):
            SignalsProcessor(settings)
        env.setenv("TRADECORE_SIGNALS_BAR_INTERVAL", "PT0.1S")
        assert SignalsProcessor(settings).engine.model is not None
