"""Model folders of the ML methods, without pickle.

A folder holds ``model.skops`` (the fitted scikit-learn estimator in skops' format, which
stores no code) and ``model.json`` (format version, method, the stage's description: its
parameters, the resolved feature configuration, feature names, classes and their names,
class weights, channel count, ...; plus the scikit-learn version and the SHA-256 of
``model.skops``). An auto-context model keeps its previous stage in the sub-folder
``context/``, a model folder of its own.

This module knows the files, not the classifier: it writes and reads ``(estimator,
description)`` pairs (`StoredStage`); [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier]
turns its fitted attributes into descriptions and back.

Loading checks the format version, the checksum (a modified estimator file is refused as
tampered) and that the file holds only types in skops' defaults plus
[`medseg.ml.estimators.TRUSTED_TYPES`][]; anything else is refused before any object
is built.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from medseg.contract import read_model_info, write_model_info
from medseg.errors import ModelError, require
from medseg.io.atomic import atomic_dir
from medseg.ml.estimators import TRUSTED_TYPES

log = logging.getLogger(__name__)

__all__ = ["CONTEXT_DIR", "MODEL_FILE", "StoredStage", "read_model_folder", "write_model_folder"]

MODEL_FILE = "model.skops"
"""The fitted estimator's file in a model folder (skops format: no code is stored)."""
CONTEXT_DIR = "context"
"""The sub-folder of an auto-context model holding its previous stage (a model folder of its own)."""


class StoredStage(NamedTuple):
    """One stage of a model folder.

    Attributes
    ----------
    directory : Path
        The stage's folder (the model folder, or a ``context`` sub-folder of it).
    estimator : scikit-learn estimator
        The fitted estimator.
    info : dict
        The stage's description from ``model.json``.
    """

    directory: Path
    estimator: Any
    info: dict[str, Any]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_model_folder(directory: str | Path, method: str, stages: Sequence[tuple[Any, dict[str, Any]]]) -> Path:
    """Write a model folder atomically (an existing folder is replaced only on success).

    Parameters
    ----------
    directory : str or Path
        The model folder.
    method : str
        The method name recorded in every ``model.json``.
    stages : sequence of (estimator, dict)
        The fitted estimator and description of the final stage, then of each earlier
        auto-context stage (each goes into the ``context`` sub-folder of the one before).

    Returns
    -------
    Path
        ``directory``.
    """
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        _write_stage(tmp, method, stages)
    log.debug("model written to %s", directory)
    return directory


def _write_stage(directory: Path, method: str, stages: Sequence[tuple[Any, dict[str, Any]]]) -> None:
    import sklearn

    sio = require("skops.io", purpose="saving ML models")
    estimator, info = stages[0]
    f = directory / MODEL_FILE
    sio.dump(estimator, f)
    info = {**info, "estimator": type(estimator).__name__, "estimator_file": MODEL_FILE,
            "estimator_sha256": _sha256(f), "sklearn_version": sklearn.__version__}
    if len(stages) > 1:  # the previous auto-context stage, a model folder of its own
        sub = directory / CONTEXT_DIR
        sub.mkdir()
        _write_stage(sub, method, stages[1:])
        info["context"] = CONTEXT_DIR
    write_model_info(directory, method, info)


def read_model_folder(directory: str | Path, method: str) -> list[StoredStage]:
    """Read and check a model folder written by `write_model_folder`.

    Parameters
    ----------
    directory : str or Path
        The model folder.
    method : str
        The method the folder must hold.

    Returns
    -------
    list of StoredStage
        The final stage first, then each earlier auto-context stage.

    Raises
    ------
    ModelError
        Not a model folder of ``method``, a missing, modified or unsafe estimator file, or
        a missing auto-context stage folder.
    """
    d = Path(directory)
    stages = []
    while True:
        stage = _read_stage(d, method)
        stages.append(stage)
        ctx = stage.info.get("context")
        if ctx is None:
            return stages
        sub = d / CONTEXT_DIR
        if ctx != CONTEXT_DIR or not sub.is_dir():  # any other name could point outside (or back up) the folder
            raise ModelError(f"{d}: the auto-context stage folder '{ctx}' is missing "
                             f"(expected the sub-folder '{CONTEXT_DIR}')")
        d = sub


def _read_stage(directory: Path, method: str) -> StoredStage:
    import sklearn

    sio = require("skops.io", purpose="loading ML models")
    info = read_model_info(directory)
    if info.get("method") != method:
        raise ModelError(f"{directory}: the model is a '{info.get('method')}' model, not '{method}'; "
                         "load it with medseg.methods.load_model")
    f = directory / str(info.get("estimator_file", MODEL_FILE))
    if f.parent != directory or not f.is_file():
        raise ModelError(f"{directory}: the estimator file {f.name} is missing")
    if _sha256(f) != info.get("estimator_sha256"):
        raise ModelError(f"{f}: checksum does not match model.json; the model was modified or corrupted, "
                         "retrain it or restore the original folder")
    try:
        untrusted = sio.get_untrusted_types(file=f)
    except Exception as exc:  # skops raises many types on a corrupt archive  # noqa: BLE001
        raise ModelError(f"{f}: not a readable model file ({exc})") from None
    unsafe = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if unsafe:
        raise ModelError(f"{f}: refusing to load types outside the allow-list: {', '.join(unsafe)}")
    try:
        est = sio.load(f, trusted=list(untrusted))
    except Exception as exc:  # noqa: BLE001 - corrupt archives raise arbitrary errors
        raise ModelError(f"{f}: cannot load the estimator ({exc})") from None
    if info.get("sklearn_version") != sklearn.__version__:
        log.warning("%s was saved with scikit-learn %s; this is %s", directory, info.get("sklearn_version"),
                    sklearn.__version__)
    return StoredStage(directory, est, info)
