"""The model file: a fitted scikit-learn classifier with the feature settings it was trained on, in skops format.

skops stores an object as JSON plus numpy arrays in a zip, never as pickle, and on load it builds only types it
trusts by default or the caller names. A file whose types are outside scikit-learn's own plus ``EXPECTED_TYPES``
(what our classifiers need beyond skops' defaults) is refused before anything in it is built: a model file is user
input, and loading must not run code from it.

The model's id is the sha256 of the file's bytes — the bytes that were loaded, read once — so a signal names
exactly the model that produced it. Saving normalises what skops leaves to chance (the zip entries' times, and
entry names and memo keys taken from ``id()`` of objects in memory), so the same model always writes the same
bytes and retraining with the same data and seed reproduces the id.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError
from threadpoolctl import threadpool_limits

from domain.signals.config import SignalConfig
from domain.signals.features import FEATURES
from streams.models.errors import ModelFileError

FORMAT = "tradecore.model"
VERSION = 1
# skops trusts scikit-learn's estimators but not every helper class inside them; these are the ones ours hold.
EXPECTED_TYPES = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})
_MEMO = re.compile(rb'("__id__": )(\d+)|("file": ")(\d+)(\.npy")')
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_scoring = threading.local()  # whether this thread's OpenMP is limited to one thread yet


@dataclass(frozen=True)
class LoadedModel:
    """A model file's classifier, ready to score feature rows (``domain.signals.features.Scorer``)."""

    model_id: str  # sha256 of the file
    features: SignalConfig
    estimator: Any  # a fitted scikit-learn classifier of labels 0 (down) and 1 (up)
    path: Path

    def score(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P(up) per row. One row at a time: a batched product may round differently from a single row's (BLAS
        picks its kernel by shape), and a replay must not depend on how bars happened to be grouped."""
        if not getattr(_scoring, "limited", False):
            # One row gains nothing from OpenMP's threads, and on a busy machine their spinning made the trees
            # score a row in ~400 ms instead of ~6 ms (past a processor's transaction timeout, over a few hundred
            # bars). OpenMP's thread count is per calling thread, so it is set in each thread that scores, once:
            # setting it costs more than a prediction.
            threadpool_limits(limits=1, user_api="openmp")
            _scoring.limited = True
        predict = self.estimator.predict_proba
        return np.array([float(predict(rows[i : i + 1])[0, 1]) for i in range(len(rows))], dtype=np.float64)


def dumps(estimator: Any, features: SignalConfig) -> bytes:
    """The model file's bytes: the same estimator and settings always give the same bytes."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "features": list(FEATURES),
        "signals": features.model_dump(mode="json"),
        "estimator": estimator,
    }
    import skops.io as sio  # imported here, not above: skops imports all of scikit-learn (about 2 s)

    return _normalised(sio.dumps(document))


def save(estimator: Any, features: SignalConfig, path: Path) -> str:
    """Write the model file; its id (sha256)."""
    data = dumps(estimator, features)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def load(path: Path) -> LoadedModel:
    """The model in ``path``, refusing a file with untrusted types or features other than ours."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ModelFileError(f"cannot read the model file {path}: {err.strerror or err}") from None
    import skops.io as sio  # as in dumps: only where a model file is read

    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except Exception as err:  # skops raises what zipfile and json raise on a file that is not one of its dumps
        raise ModelFileError(
            f"{path} is not a skops model file: {err}", hint="write it with `tradecore train`"
        ) from None
    refused = sorted(untrusted - EXPECTED_TYPES)
    if refused:
        raise ModelFileError(
            f"{path} holds types that are not trusted: {', '.join(refused)}",
            hint="only scikit-learn classifiers written by `tradecore train` load; nothing in the file was run",
        )
    try:
        document = sio.loads(data, trusted=sorted(untrusted))
    except Exception as err:  # a damaged dump fails in whichever loader meets the damage
        raise ModelFileError(f"{path}: damaged model file: {err}") from None
    return LoadedModel(hashlib.sha256(data).hexdigest(), *_checked(document, path), path=path)


def _checked(document: Any, path: Path) -> tuple[SignalConfig, Any]:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a tradecore model", hint="write it with `tradecore train`")
    if document.get("version") != VERSION:
        raise ModelFileError(f"{path}: model format version {document.get('version')!r}, this reads {VERSION}")
    if document.get("features") != list(FEATURES):
        raise ModelFileError(
            f"{path} was trained on features {document.get('features')}, the engine computes {list(FEATURES)}",
            hint="retrain it with `tradecore train`",
        )
    try:
        features = SignalConfig.model_validate(document["signals"])
    except (KeyError, ValidationError) as err:
        raise ModelFileError(f"{path}: its signal settings are not valid: {err}") from None
    estimator = document.get("estimator")
    classes = getattr(estimator, "classes_", None)
    if not hasattr(estimator, "predict_proba") or classes is None or list(classes) != [0, 1]:
        raise ModelFileError(f"{path}: the estimator is not a fitted classifier of down (0) and up (1)")
    return features, estimator


def _normalised(data: bytes) -> bytes:
    """``data`` with its memo keys and array names renumbered in order of appearance and fixed entry times."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = source.read("schema.json")
    numbers: dict[bytes, bytes] = {}

    def renumber(match: re.Match[bytes]) -> bytes:
        original = match.group(2) or match.group(4)
        new = numbers.setdefault(original, str(len(numbers) + 1).encode())
        if match.group(1) is not None:
            return match.group(1) + new
        return match.group(3) + new + match.group(5)

    schema = _MEMO.sub(renumber, schema)
    json.loads(schema)  # still a document: a renumbering that broke it must fail here, not at load
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            name = info.filename
            if name == "schema.json":
                content = schema
            else:
                stem = name.removesuffix(".npy").encode()
                if stem not in numbers:
                    raise ModelFileError(f"skops wrote an entry {name} its schema does not name")
                content = source.read(name)
                name = numbers[stem].decode() + ".npy"
            target.writestr(zipfile.ZipInfo(name, date_time=_ZIP_EPOCH), content)
    return out.getvalue()
