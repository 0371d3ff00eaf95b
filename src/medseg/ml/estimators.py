"""scikit-learn estimators behind the ML methods, and their parameter dataclasses.

Each method has a frozen ``Params`` dataclass: the shared feature fields of
:class:`FeatureParams` plus its estimator's own fields. :data:`ESTIMATORS` maps a method
name to ``build(params, n_features, seed) -> estimator`` (a scikit-learn classifier
with ``predict_proba``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medseg.features.stack import DEFAULT_FEATURES, FeatureConfig

__all__ = [
    "ESTIMATORS",
    "TRUSTED_TYPES",
    "BoostingParams",
    "FeatureParams",
    "ForestParams",
    "KNNParams",
    "MLPParams",
    "SVMParams",
    "TrainParams",
    "TreeParams",
    "feature_config",
    "fit_estimator",
    "set_jobs",
]


def _h(text: str) -> dict[str, str]:
    return {"help": text}


_AUTOCONTEXT_HELP = ("auto-context stages after the first (ilastik's auto-context): each stage adds the "
                     "previous stage's class probabilities to the image as channels and is trained again; "
                     "the training probabilities come from two half-models (cross-fitting), so the next "
                     "stage learns from probabilities like those it sees on new images; with binary "
                     "dense labels a stage leaves the pixels its predecessor finds clearly background "
                     "(a bound learnt on held-out pixels) to that predecessor. 0: one stage")


@dataclass(frozen=True)
class FeatureParams:
    """Feature-stack fields shared by every ML method (see :class:`FeatureConfig`)."""

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
    autocontext: int = field(default=0, metadata=_h(_AUTOCONTEXT_HELP))

    def __post_init__(self) -> None:
        from medseg.errors import ConfigError

        if not 0 <= int(self.autocontext) <= 3:
            raise ConfigError(f"autocontext must be 0..3 extra stages, got {self.autocontext}")


def feature_config(params: FeatureParams) -> FeatureConfig:
    return FeatureConfig(features=params.features, sigmas=params.sigmas, channels=params.channels,
                         normalise=params.normalise, ridges=params.ridges, max_memory_mb=params.max_memory_mb)


@dataclass(frozen=True)
class ForestParams(FeatureParams):
    n_estimators: int = field(default=50, metadata=_h("number of trees"))
    max_depth: int | None = field(default=None, metadata=_h("maximum tree depth (default: unlimited)"))
    min_samples_leaf: int = field(default=3, metadata=_h("minimum training pixels per leaf"))
    max_features: float | None = field(default=None, metadata=_h(
        "fraction of features tried per split (default: sqrt(n_features))"))
    autocontext: int = field(default=1, metadata=_h(_AUTOCONTEXT_HELP + " (forests: 1)"))
    max_samples: int | None = field(default=75000, metadata=_h(
        "training pixels drawn (bootstrap) for each tree; bounds the fit time when many pixels are "
        "sampled, each tree then sees a different subset (None: as many as there are)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        from medseg.errors import ConfigError

        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"max_samples must be at least 2 (or None), got {self.max_samples}")


@dataclass(frozen=True)
class BoostingParams(FeatureParams):
    max_iter: int = field(default=200, metadata=_h("boosting iterations"))
    learning_rate: float = field(default=0.1, metadata=_h("shrinkage"))
    max_leaf_nodes: int = field(default=31, metadata=_h("leaves per tree"))


@dataclass(frozen=True)
class SVMParams(FeatureParams):
    n_components: int = field(default=400, metadata=_h("Nystroem kernel-approximation components"))
    C: float = field(default=1.0, metadata=_h("regularisation (larger: fit training pixels more tightly)"))
    gamma: float | None = field(default=None, metadata=_h("RBF width; default 1 / n_features (features are standardised)"))


@dataclass(frozen=True)
class TreeParams(FeatureParams):
    max_depth: int | None = field(default=None, metadata=_h("maximum depth (default: unlimited)"))
    min_samples_leaf: int = field(default=5, metadata=_h("minimum training pixels per leaf"))


@dataclass(frozen=True)
class KNNParams(FeatureParams):
    n_neighbors: int = field(default=15, metadata=_h("neighbours voting (distance-weighted)"))


@dataclass(frozen=True)
class MLPParams(FeatureParams):
    hidden_layers: tuple[int, ...] = field(default=(64, 32), metadata=_h("hidden layer widths"))
    alpha: float = field(default=1e-4, metadata=_h("L2 penalty"))
    max_iter: int = field(default=200, metadata=_h("maximum epochs (early stopping on 10% held out)"))


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
        from medseg.errors import ConfigError

        if self.samples_per_image is not None and self.samples_per_image < 2:
            raise ConfigError(f"samples_per_image must be at least 2, got {self.samples_per_image}")


def _forest(kind: str) -> Callable[[Any, int, int], Any]:
    def build(p: ForestParams, n_features: int, seed: int):
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        cls = RandomForestClassifier if kind == "rf" else ExtraTreesClassifier
        return cls(n_estimators=p.n_estimators, max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf,
                   max_features=p.max_features if p.max_features is not None else "sqrt", n_jobs=p.n_jobs,
                   max_samples=p.max_samples, random_state=seed)
    return build


def _boosting(p: BoostingParams, n_features: int, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=p.max_iter, learning_rate=p.learning_rate,
                                          max_leaf_nodes=p.max_leaf_nodes, early_stopping="auto", random_state=seed)


def _svm(p: SVMParams, n_features: int, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.kernel_approximation import Nystroem
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    gamma = p.gamma if p.gamma is not None else 1.0 / max(n_features, 1)
    svc = CalibratedClassifierCV(LinearSVC(C=p.C, random_state=seed), cv=3, method="sigmoid")
    return make_pipeline(StandardScaler(), Nystroem(gamma=gamma, n_components=p.n_components, random_state=seed), svc)


def _tree(p: TreeParams, n_features: int, seed: int):
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(max_depth=p.max_depth, min_samples_leaf=p.min_samples_leaf, random_state=seed)


def _knn(p: KNNParams, n_features: int, seed: int):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=p.n_neighbors, weights="distance",
                                                                n_jobs=p.n_jobs))


def _mlp(p: MLPParams, n_features: int, seed: int):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=p.hidden_layers, alpha=p.alpha,
                                                         max_iter=p.max_iter, early_stopping=True,
                                                         random_state=seed))


def set_jobs(estimator: Any, n_jobs: int) -> Any:
    """Set ``n_jobs`` on ``estimator`` (and the steps of a pipeline) where supported."""
    steps = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    for s in steps:
        if "n_jobs" in s.get_params(deep=False):
            s.set_params(n_jobs=n_jobs)
    return estimator


def fit_estimator(estimator: Any, X: Any, y: Any, n_jobs: int) -> Any:
    """Fit with ``n_jobs`` cores, or one when there are too few rows for threads to pay off."""
    set_jobs(estimator, n_jobs if len(X) >= 20000 else 1)
    cap = getattr(estimator, "max_samples", None)
    if isinstance(cap, (int, np.integer)) and cap >= len(X):
        estimator.set_params(max_samples=None)  # fewer rows than the per-tree cap: plain bootstrap
    estimator.fit(X, y)
    return set_jobs(estimator, n_jobs)


ESTIMATORS: dict[str, Callable[[Any, int, int], Any]] = {
    "random-forest": _forest("rf"), "extra-trees": _forest("et"), "gradient-boosting": _boosting,
    "svm": _svm, "decision-tree": _tree, "knn": _knn, "mlp": _mlp,
}

# Types (beyond those skops trusts by default) that a medseg ML model file may contain.
# Loading refuses any file holding a type outside this list and skops' defaults.
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
