"""Fitting the model behind ``indicator=model``, and judging it out of sample before anyone trades it.

Walk-forward: the rows, in time order, are cut into ``folds + 1`` blocks (scikit-learn's ``TimeSeriesSplit``); fold
k is fitted on every block before block k + 1 and scored on block k + 1 alone, so no score ever saw its future. Beside
the model's out-of-sample accuracy stand two naive forecasts scored on the same rows — the majority direction of the
fold's training rows, and the previous bar's direction carried forward — because an accuracy means something only
against what costs nothing. The model that is saved is then fitted on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import TimeSeriesSplit
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from domain.signals.features import FEATURES
from streams.errors import StreamsError
from streams.models.dataset import TrainingSet

Kind = Literal["logistic", "gbm"]
KINDS: dict[str, str] = {
    "logistic": "standardised features, L2-regularised logistic regression",
    "gbm": "histogram gradient-boosted trees (no early stopping: its random validation split would vary)",
}
_RETURN_1 = FEATURES.index("return_1")


class TrainingError(StreamsError):
    """The data cannot train or validate a model as asked."""


@dataclass(frozen=True)
class Fold:
    """One walk-forward step: fitted on ``train`` rows, scored on the next ``test`` rows."""

    train: int
    test: int
    accuracy: float
    majority: float  # accuracy of always forecasting the training rows' majority direction
    previous: float  # accuracy of forecasting the last bar's direction again


@dataclass(frozen=True)
class Evaluation:
    folds: list[Fold]

    def pooled(self, measure: str) -> float:
        """``measure`` over every out-of-sample row of every fold (folds weighted by their rows)."""
        rows = sum(fold.test for fold in self.folds)
        return float(sum(getattr(fold, measure) * fold.test for fold in self.folds)) / rows


def estimator(kind: Kind, seed: int) -> Pipeline:
    """An unfitted classifier of the kind; ``seed`` fixes whatever randomness it has."""
    if kind == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed))
    if kind == "gbm":
        return make_pipeline(HistGradientBoostingClassifier(early_stopping=False, random_state=seed))
    raise TrainingError(f"unknown model {kind!r}", hint=f"known: {', '.join(KINDS)}")


def walk_forward(data: TrainingSet, kind: Kind, seed: int, folds: int) -> Evaluation:
    """Out-of-sample accuracy of the model and of the naive forecasts, fold by fold."""
    rows, labels = data.rows, data.labels
    if len(rows) < 2 * (folds + 1):
        raise TrainingError(
            f"{len(rows)} labelled bars cannot make {folds} walk-forward folds",
            hint="use a longer file, a shorter bar interval (--param bar_interval=PT0.1S) or fewer --folds",
        )
    found = []
    for train, test in TimeSeriesSplit(n_splits=folds).split(rows):
        if len(set(labels[train].tolist())) < 2:
            raise TrainingError(f"the first {len(train)} labelled bars all moved the same way: nothing to learn")
        with _one_thread():
            model = estimator(kind, seed).fit(rows[train], labels[train])
            predicted = model.predict(rows[test])
        truth = labels[test]
        majority = int(labels[train].mean() >= 0.5)
        previous = (rows[test, _RETURN_1] > 0.0).astype(np.int8)
        found.append(
            Fold(
                train=len(train),
                test=len(test),
                accuracy=float((predicted == truth).mean()),
                majority=float((truth == majority).mean()),
                previous=float((previous == truth).mean()),
            )
        )
    return Evaluation(found)


def fit(data: TrainingSet, kind: Kind, seed: int) -> Any:
    """The model fitted on every labelled bar (what is saved)."""
    if len(set(data.labels.tolist())) < 2:
        raise TrainingError("every labelled bar moved the same way: nothing to learn")
    with _one_thread():
        return estimator(kind, seed).fit(data.rows, data.labels)


def _one_thread() -> threadpool_limits:
    """OpenMP (the trees') on one thread: a fit must not depend on the machine's cores, and on a busy machine
    spinning OpenMP threads made fitting 30 times slower than one thread (10 s against 0.3 s on the Binance quotes)."""
    return threadpool_limits(limits=1, user_api="openmp")
