"""What every ML method shares on the scikit-learn side: the feature options
(`FeatureParams`), the training options (`TrainParams`), fitting with
``n_jobs`` cores, up-front parameter validation and the types a model file may hold.

Each method's own estimator and its parameters live on its class in
[`medseg.ml.classifiers`][] (``build_estimator``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medseg.errors import ConfigError
from medseg.features.config import DEFAULT_FEATURES, FeatureConfig

__all__ = [
    "AUTOCONTEXT_HELP",
    "TRUSTED_TYPES",
    "FeatureParams",
    "TrainParams",
    "feature_config",
    "fit_estimator",
    "set_jobs",
    "validate_estimator",
]


def _h(text: str) -> dict[str, str]:
    return {"help": text}


AUTOCONTEXT_HELP = ("auto-context stages after the first (ilastik's auto-context): each stage adds the "
                    "previous stage's class probabilities to the image as channels and is trained again; "
                    "the training probabilities come from two half-models (cross-fitting), so the next "
                    "stage learns from probabilities like those it sees on new images; with binary "
                    "dense labels a stage leaves the pixels its predecessor finds clearly background "
                    "(a bound learnt on held-out pixels) to that predecessor. 0: one stage")
"""Help text of the ``autocontext`` field."""


@dataclass(frozen=True)
class FeatureParams:
    """Feature-stack fields shared by every ML method (see `FeatureConfig`)."""

    features: tuple[str, ...] = field(default=DEFAULT_FEATURES, metadata=_h(
        "comma-separated feature filters (see medseg.features.FEATURES)"))
    sigmas: tuple[float, ...] | None = field(default=None, metadata=_h(
        "physical scales (mm); default: min(spacing) * 0.5,1,2,4,8 limited by the image extent"))
    channels: tuple[int, ...] | None = field(default=None, metadata=_h("channels to use; default: all"))
    normalise: Literal["percentile", "zscore", "none"] = field(default="percentile", metadata=_h(
        "per-image intensity normalisation before filtering"))
    ridges: Literal["both", "dark", "bright"] = field(default="both", metadata=_h(
        "polarity of vesselness features"))
    max_memory_mb: float = field(default=1024.0, metadata=_h("memory bound for one block of features"))
    n_jobs: int = field(default=-1, metadata=_h("CPU cores for training/prediction (-1: all)"))
    autocontext: int = field(default=0, metadata=_h(AUTOCONTEXT_HELP))

    def __post_init__(self) -> None:
        if not 0 <= int(self.autocontext) <= 3:
            raise ConfigError(f"autocontext must be 0..3 extra stages, got {self.autocontext}")

    def default_features(self, ndim: int) -> tuple[str, ...]:
        """The features used when ``features`` is ``None``, for ``ndim``-D images."""
        return DEFAULT_FEATURES


def feature_config(params: FeatureParams, ndim: int = 2) -> FeatureConfig:
    """The `FeatureConfig` of a method's parameters (validates the feature names).

    Parameters
    ----------
    params : FeatureParams
        Any ML method's ``Params``.
    ndim : int
        Spatial dimensions of the images (2 or 3): picks the default features when
        ``params.features`` is ``None`` (see `ForestParams`).

    Returns
    -------
    FeatureConfig

    Examples
    --------
    >>> feature_config(FeatureParams(features=("gaussian",), sigmas=(1.0,))).features
    ('gaussian',)
    """
    features = params.features if params.features is not None else params.default_features(ndim)
    return FeatureConfig(features=features, sigmas=params.sigmas, channels=params.channels,
                         normalise=params.normalise, ridges=params.ridges, max_memory_mb=params.max_memory_mb)


@dataclass(frozen=True)
class TrainParams:
    """Training options shared by the ML methods (``medseg train`` flags)."""

    samples_per_image: int | None = field(default=None, metadata=_h(
        "cap on training pixels drawn from each image (bounds training memory); default: 40000 for "
        "random-forest and extra-trees (each tree fits on max_samples of them), 10000 for the others"))
    balance: Literal["balanced", "none"] = field(default="balanced", metadata=_h(
        "balanced: equal pixel counts per class from each image; none: draw at random"))
    prior_correction: bool = field(default=True, metadata=_h(
        "with balanced sampling of dense labels, rescale probabilities to the true class frequencies"))
    threshold: Literal["f1", "argmax"] = field(default="f1", metadata=_h(
        "binary dense labels: f1 = pick the foreground-probability threshold maximising F1 on 15% of the "
        "sampled pixels held out from fitting (weighted to the true class frequencies); argmax: 0.5"))
    ignore_label: int | None = field(default=None, metadata=_h(
        "label value of unlabelled pixels (sparse scribbles, e.g. 0 when classes are 1..K); default: dense labels"))
    seed: int = field(default=0, metadata=_h("random seed for sampling and the estimator"))

    def __post_init__(self) -> None:
        if self.samples_per_image is not None and self.samples_per_image < 2:
            raise ConfigError(f"samples_per_image must be at least 2, got {self.samples_per_image}")


def set_jobs(estimator: Any, n_jobs: int) -> Any:
    """Set ``n_jobs`` on ``estimator`` (and the steps of a pipeline) where supported.

    Parameters
    ----------
    estimator : scikit-learn estimator or Pipeline
    n_jobs : int
        Cores (-1: all).

    Returns
    -------
    estimator
        The same object.
    """
    steps = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    for s in steps:
        if "n_jobs" in s.get_params(deep=False):
            s.set_params(n_jobs=n_jobs)
    return estimator


def fit_estimator(estimator: Any, X: Any, y: Any, n_jobs: int) -> Any:
    """Fit with ``n_jobs`` cores, or one when there are too few rows for threads to pay off.

    Parameters
    ----------
    estimator : scikit-learn classifier
    X : numpy.ndarray
        ``(n_samples, n_features)`` training rows.
    y : numpy.ndarray
        ``(n_samples,)`` class indices.
    n_jobs : int
        Cores for large fits and for prediction afterwards (-1: all).

    Returns
    -------
    estimator
        The same object, fitted.
    """
    set_jobs(estimator, n_jobs if len(X) >= 20000 else 1)
    cap = getattr(estimator, "max_samples", None)
    if isinstance(cap, (int, np.integer)) and cap >= len(X):
        estimator.set_params(max_samples=None)  # fewer rows than the per-tree cap: plain bootstrap
    estimator.fit(X, y)
    return set_jobs(estimator, n_jobs)


def validate_estimator(estimator: Any, name: str) -> None:
    """Check scikit-learn parameters up front, so a bad flag fails before features are computed.

    Parameters
    ----------
    estimator : scikit-learn estimator or Pipeline
        Unfitted.
    name : str
        The method name, for the message.

    Raises
    ------
    ConfigError
        A parameter scikit-learn refuses.
    """
    parts = [estimator] + [v for v in estimator.get_params(deep=True).values() if hasattr(v, "get_params")]
    for part in parts:
        check = getattr(part, "_validate_params", None)
        if check is None:
            continue
        try:
            check()
        except (ValueError, TypeError) as exc:
            msg = str(exc).replace(f"{type(part).__name__}", f"'{name}'")
            raise ConfigError(f"invalid parameter for method '{name}': {msg}") from None


TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
)
"""Types (beyond those skops trusts by default) that a medseg ML model file may contain. Loading
refuses any file holding a type outside this list and skops' defaults."""
