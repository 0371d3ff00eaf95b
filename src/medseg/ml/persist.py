"""Model folders of the ML methods, without pickle.

A folder holds ``model.skops`` (the fitted scikit-learn estimator in skops' format,
which stores no code) and ``model.json`` (format version, method, parameters, the
resolved feature configuration, feature names, classes and their names, class weights,
channel count, medseg and scikit-learn versions, and the SHA-256 of ``model.skops``).

Loading checks the format version, the checksum (a modified estimator file is refused as
tampered) and that the file holds only types in skops' defaults plus
:data:`medseg.ml.estimators.TRUSTED_TYPES`; anything else is refused before any object
is built.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medseg.config import from_dict, to_dict
from medseg.errors import ConfigError, ModelError, require
from medseg.features.stack import FeatureConfig
from medseg.io.atomic import atomic_dir
from medseg.contract import read_model_info, write_model_info
from medseg.ml.estimators import TRUSTED_TYPES, TrainParams

if TYPE_CHECKING:
    from medseg.ml.segmenter import PixelClassifier

log = logging.getLogger(__name__)

__all__ = ["MODEL_FILE", "load_model_folder", "save_model"]

MODEL_FILE = "model.skops"
CONTEXT_DIR = "context"  # sub-folder holding the previous auto-context stage


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model: PixelClassifier, directory: Path) -> Path:
    """Write ``model`` to ``directory`` atomically (an existing folder is replaced only on success)."""
    import sklearn

    sio = require("skops.io", purpose="saving ML models")
    with atomic_dir(directory) as tmp:
        f = tmp / MODEL_FILE
        sio.dump(model.estimator_, f)
        info = {
            "params": to_dict(model.params),
            "train_options": to_dict(model.options),
            "feature_config": model.feature_config_.to_dict(),
            "feature_names": list(model.feature_names_),
            "classes": [int(c) for c in model.classes_],
            "class_names": {str(k): v for k, v in model.class_names_.items()},
            "class_weights": [float(w) for w in model.class_weights_],
            "threshold": model.threshold_,
            "reject_below": model.reject_below_,
            "n_channels": int(model.n_channels_),
            "ndim": int(model.ndim_),
            "estimator": type(model.estimator_).__name__,
            "estimator_file": MODEL_FILE,
            "estimator_sha256": _sha256(f),
            "sklearn_version": sklearn.__version__,
            "training": model.train_info_,
        }
        if model.context_ is not None:  # the previous auto-context stage, a model folder of its own
            save_model(model.context_, tmp / CONTEXT_DIR)
            info["context"] = CONTEXT_DIR
        write_model_info(tmp, model.name, info)
    log.info("model written to %s", directory)
    return directory


def _probability(value, key: str) -> float | None:
    """``None`` or a probability in [0, 1] (a decision bound read from model.json)."""
    if value is None:
        return None
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also false for NaN
        raise ValueError(f"{key} must be a probability in [0, 1], got {value!r}")
    return v


def load_model_folder(cls: type[PixelClassifier], directory: Path) -> PixelClassifier:
    """Rebuild a fitted ``cls`` from ``directory`` (see the module docstring for the checks)."""
    import sklearn

    sio = require("skops.io", purpose="loading ML models")
    info = read_model_info(directory)
    if info.get("method") != cls.name:
        raise ModelError(f"{directory}: the model is a '{info.get('method')}' model, not '{cls.name}'; "
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
    try:
        model = cls(from_dict(cls.Params, info.get("params", {}), what=f"model '{cls.name}'"),
                    options=from_dict(TrainParams, info.get("train_options", {}), what="training options"))
        model.feature_config_ = FeatureConfig.from_dict(info["feature_config"])
        model.feature_names_ = [str(n) for n in info["feature_names"]]
        model.classes_ = np.asarray(info["classes"], dtype=np.int64)
        model.class_names_ = {int(k): str(v) for k, v in info.get("class_names", {}).items()}
        model.class_weights_ = np.asarray(info["class_weights"], dtype=float)
        model.n_channels_, model.ndim_ = int(info["n_channels"]), int(info["ndim"])
        model.threshold_ = _probability(info.get("threshold"), "threshold")
        model.reject_below_ = _probability(info.get("reject_below"), "reject_below")
        model.train_info_ = dict(info.get("training", {}))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise ModelError(f"{directory}/model.json: incomplete or invalid model description ({exc})") from None
    n_classes = len(getattr(est, "classes_", []))
    if n_classes != len(model.classes_) or len(model.class_weights_) != n_classes:
        raise ModelError(f"{directory}: model.json lists {len(model.classes_)} classes but the estimator has "
                         f"{n_classes}")
    model.estimator_ = est
    ctx = info.get("context")
    if ctx is not None:
        sub = directory / CONTEXT_DIR
        if ctx != CONTEXT_DIR or not sub.is_dir():  # any other name could point outside (or back up) the folder
            raise ModelError(f"{directory}: the auto-context stage folder '{ctx}' is missing "
                             f"(expected the sub-folder '{CONTEXT_DIR}')")
        model.context_ = load_model_folder(cls, sub)
    if (model.context_ is None) != (int(model.params.autocontext) == 0):
        raise ModelError(f"{directory}: model.json says autocontext={model.params.autocontext} but the folder "
                         f"{'has no' if model.context_ is None else 'has a'} previous stage; the model is incomplete")
    return model
