"""The ML methods: one [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier] subclass per
estimator, each with its name, its ``Params`` and the ``build_estimator`` that turns them
into a scikit-learn classifier. `ML_METHODS` lists them; `medseg.methods.ml`
registers them.

Train with ``medseg train DATASET --method random-forest --out MODEL`` or
``fit(images, labels)``; predict with ``medseg predict MODEL IN OUT`` or ``predict(image)``.
scikit-learn is imported when an estimator is built, not with this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from medseg.errors import ConfigError
from medseg.features.config import DEFAULT_FEATURES, FOREST_FEATURES
from medseg.ml.estimators import AUTOCONTEXT_HELP, FeatureParams
from medseg.ml.segmenter import PixelClassifier

__all__ = [
    "KNN", "ML_METHODS", "MLP", "SVM", "BoostingParams", "DecisionTree", "ExtraTrees", "ForestParams",
    "GradientBoosting", "KNNParams", "MLPParams", "RandomForest", "SVMParams", "TreeParams",
]


def _h(text: str) -> dict[str, str]:
    return {"help": text}


# ------------------------------------------------------------------------------- forests
@dataclass(frozen=True)
class ForestParams(FeatureParams):
    """Parameters of ``random-forest`` and ``extra-trees``. Their default features come from
    the data: on 2D images they add the line strength to the others'
    (`medseg.features.FOREST_FEATURES`); on 3D images they are `medseg.features.DEFAULT_FEATURES`,
    as the line detector works slice by slice and misses what crosses the slices (on the
    synthetic head volumes it lowered mean Dice by 0.003-0.004 with two sets of seeds;
    benchmarks/results/ml.md)."""

    features: tuple[str, ...] | None = field(default=None, metadata=_h(
        "comma-separated feature filters (see medseg.features.FEATURES); default: from the data, "
        "the line strength ('lines') joins the standard features on 2D images, not on 3D"))
    n_estimators: int = field(default=50, metadata=_h("number of trees"))
    max_depth: int | None = field(default=None, metadata=_h("maximum tree depth (default: unlimited)"))
    min_samples_leaf: int = field(default=3, metadata=_h("minimum training pixels per leaf"))
    max_features: float | None = field(default=None, metadata=_h(
        "fraction of features tried per split (default: sqrt(n_features))"))
    autocontext: int = field(default=1, metadata=_h(AUTOCONTEXT_HELP + " (forests: 1)"))
    max_samples: int | None = field(default=75000, metadata=_h(
        "training pixels drawn (bootstrap) for each tree; bounds the fit time when many pixels are "
        "sampled, each tree then sees a different subset (None: as many as there are)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_samples is not None and self.max_samples < 2:
            raise ConfigError(f"max_samples must be at least 2 (or None), got {self.max_samples}")

    def default_features(self, ndim: int) -> tuple[str, ...]:
        """`FOREST_FEATURES` for 2D images, `DEFAULT_FEATURES` for 3D ones."""
        return FOREST_FEATURES if ndim == 2 else DEFAULT_FEATURES


def _forest_args(p: ForestParams, seed: int) -> dict[str, Any]:
    return {"n_estimators": p.n_estimators, "max_depth": p.max_depth, "min_samples_leaf": p.min_samples_leaf,
            "max_features": p.max_features if p.max_features is not None else "sqrt", "n_jobs": p.n_jobs,
            "max_samples": p.max_samples, "random_state": seed}


class RandomForest(PixelClassifier):
    """Random forest on per-pixel features (the ilastik classic).

    Parameters
    ----------
    params : ForestParams or dict, optional
        Trees, depth, leaf size, per-tree sample cap, auto-context stages (1 by default)
        and the feature options of [`FeatureParams`][medseg.ml.estimators.FeatureParams].
    options : TrainParams, optional
        Sampling and threshold options for `fit` and `train`.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> rf = RandomForest(n_estimators=10, sigmas=(1.0, 2.0)).fit(img, truth)
    >>> labels = rf.predict(img)
    >>> labels.shape, bool((labels.array == truth.array).mean() > 0.95)
    ((48, 48), True)
    """

    name = "random-forest"
    summary = "random forest on multi-scale pixel features (trainable)"
    Params = ForestParams
    default_samples_per_image = 40000  # each tree fits on max_samples of them
    interactive_params: ClassVar[dict[str, Any]] = {"n_estimators": 40, "autocontext": 0}

    @classmethod
    def build_estimator(cls, params: ForestParams, n_features: int, seed: int) -> Any:
        """A ``RandomForestClassifier`` (see `PixelClassifier.build_estimator`)."""
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(**_forest_args(params, seed))


class ExtraTrees(PixelClassifier):
    """Extremely randomised trees on per-pixel features (random split thresholds).

    Parameters
    ----------
    params : ForestParams or dict, optional
        As `RandomForest`.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> et = ExtraTrees(n_estimators=10, autocontext=0, sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((et.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "extra-trees"
    summary = "extremely randomised trees on pixel features (trainable)"
    Params = ForestParams
    default_samples_per_image = 40000  # each tree fits on max_samples of them
    interactive_params: ClassVar[dict[str, Any]] = {"n_estimators": 40, "autocontext": 0}

    @classmethod
    def build_estimator(cls, params: ForestParams, n_features: int, seed: int) -> Any:
        """An ``ExtraTreesClassifier`` (see `PixelClassifier.build_estimator`)."""
        from sklearn.ensemble import ExtraTreesClassifier

        return ExtraTreesClassifier(**_forest_args(params, seed))


# ------------------------------------------------------------------------------- boosting
@dataclass(frozen=True)
class BoostingParams(FeatureParams):
    """Parameters of ``gradient-boosting``."""

    max_iter: int = field(default=200, metadata=_h("boosting iterations"))
    learning_rate: float = field(default=0.1, metadata=_h("shrinkage"))
    max_leaf_nodes: int = field(default=31, metadata=_h("leaves per tree"))


class GradientBoosting(PixelClassifier):
    """Histogram-based gradient boosting on per-pixel features.

    Parameters
    ----------
    params : BoostingParams or dict, optional
        Iterations, learning rate, leaves per tree and the feature options.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> gb = GradientBoosting(max_iter=10, sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((gb.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "gradient-boosting"
    summary = "histogram-based gradient boosting on pixel features (trainable)"
    Params = BoostingParams

    @classmethod
    def build_estimator(cls, params: BoostingParams, n_features: int, seed: int) -> Any:
        """A ``HistGradientBoostingClassifier`` (see `PixelClassifier.build_estimator`)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=params.max_iter, learning_rate=params.learning_rate,
                                              max_leaf_nodes=params.max_leaf_nodes, early_stopping="auto",
                                              random_state=seed)


# ------------------------------------------------------------------------------- SVM
@dataclass(frozen=True)
class SVMParams(FeatureParams):
    """Parameters of ``svm``."""

    n_components: int = field(default=400, metadata=_h("Nystroem kernel-approximation components"))
    C: float = field(default=1.0, metadata=_h("regularisation (larger: fit training pixels more tightly)"))
    gamma: float | None = field(default=None, metadata=_h(
        "RBF width; default 1 / n_features (features are standardised)"))


class SVM(PixelClassifier):
    """Linear SVM on a Nystroem approximation of the RBF kernel, with sigmoid-calibrated
    probabilities, on standardised per-pixel features.

    Parameters
    ----------
    params : SVMParams or dict, optional
        Kernel components, ``C``, ``gamma`` and the feature options.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> svm = SVM(n_components=50, sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((svm.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "svm"
    summary = "linear SVM on a Nystroem RBF-kernel approximation, calibrated probabilities (trainable)"
    Params = SVMParams

    @classmethod
    def build_estimator(cls, params: SVMParams, n_features: int, seed: int) -> Any:
        """Scaler, Nystroem map and calibrated ``LinearSVC`` in a pipeline (see
        `PixelClassifier.build_estimator`)."""
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.kernel_approximation import Nystroem
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVC

        gamma = params.gamma if params.gamma is not None else 1.0 / max(n_features, 1)
        svc = CalibratedClassifierCV(LinearSVC(C=params.C, random_state=seed), cv=3, method="sigmoid")
        return make_pipeline(StandardScaler(), Nystroem(gamma=gamma, n_components=params.n_components,
                                                        random_state=seed), svc)


# ------------------------------------------------------------------------------- tree
@dataclass(frozen=True)
class TreeParams(FeatureParams):
    """Parameters of ``decision-tree``."""

    max_depth: int | None = field(default=None, metadata=_h("maximum depth (default: unlimited)"))
    min_samples_leaf: int = field(default=5, metadata=_h("minimum training pixels per leaf"))


class DecisionTree(PixelClassifier):
    """A single decision tree on per-pixel features (fast, interpretable).

    Parameters
    ----------
    params : TreeParams or dict, optional
        Depth, leaf size and the feature options.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> tree = DecisionTree(sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((tree.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "decision-tree"
    summary = "single decision tree on pixel features (trainable, interpretable)"
    Params = TreeParams

    @classmethod
    def build_estimator(cls, params: TreeParams, n_features: int, seed: int) -> Any:
        """A ``DecisionTreeClassifier`` (see `PixelClassifier.build_estimator`)."""
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=params.max_depth, min_samples_leaf=params.min_samples_leaf,
                                      random_state=seed)


# ------------------------------------------------------------------------------- kNN
@dataclass(frozen=True)
class KNNParams(FeatureParams):
    """Parameters of ``knn``."""

    n_neighbors: int = field(default=15, metadata=_h("neighbours voting (distance-weighted)"))


class KNN(PixelClassifier):
    """k-nearest-neighbour vote (distance-weighted) on standardised per-pixel features.

    Parameters
    ----------
    params : KNNParams or dict, optional
        Neighbours and the feature options.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> knn = KNN(sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((knn.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "knn"
    summary = "k-nearest-neighbour vote on standardised pixel features (trainable)"
    Params = KNNParams

    @classmethod
    def build_estimator(cls, params: KNNParams, n_features: int, seed: int) -> Any:
        """Scaler and ``KNeighborsClassifier`` in a pipeline (see `PixelClassifier.build_estimator`)."""
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=params.n_neighbors,
                                                                    weights="distance", n_jobs=params.n_jobs))


# ------------------------------------------------------------------------------- MLP
@dataclass(frozen=True)
class MLPParams(FeatureParams):
    """Parameters of ``mlp``."""

    hidden_layers: tuple[int, ...] = field(default=(64, 32), metadata=_h("hidden layer widths"))
    alpha: float = field(default=1e-4, metadata=_h("L2 penalty"))
    max_iter: int = field(default=200, metadata=_h("maximum epochs (early stopping on 10% held out)"))


class MLP(PixelClassifier):
    """Multi-layer perceptron on standardised per-pixel features (early stopping).

    Parameters
    ----------
    params : MLPParams or dict, optional
        Hidden layers, L2 penalty, epochs and the feature options.
    options : TrainParams, optional
        Sampling and threshold options.
    **kwargs
        Parameters by name.

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((48, 48), seed=0)
    >>> mlp = MLP(hidden_layers=(16,), max_iter=50, sigmas=(1.0, 2.0)).fit(img, truth)
    >>> bool((mlp.predict(img).array == truth.array).mean() > 0.95)
    True
    """

    name = "mlp"
    summary = "multi-layer perceptron on standardised pixel features (trainable)"
    Params = MLPParams

    @classmethod
    def build_estimator(cls, params: MLPParams, n_features: int, seed: int) -> Any:
        """Scaler and ``MLPClassifier`` in a pipeline (see `PixelClassifier.build_estimator`)."""
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=params.hidden_layers,
                                                             alpha=params.alpha, max_iter=params.max_iter,
                                                             early_stopping=True, random_state=seed))


ML_METHODS: tuple[type[PixelClassifier], ...] = (RandomForest, ExtraTrees, GradientBoosting, SVM, DecisionTree,
                                                KNN, MLP)
"""Every ML method class, in the order ``medseg methods`` describes them."""
