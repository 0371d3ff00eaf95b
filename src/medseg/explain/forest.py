"""Explanations of pixel classifiers: exact per-feature contributions of tree ensembles and
the permutation importance of each feature family.

**Contributions** (the tree-path decomposition of Saabas, ``treeinterpreter``): a tree's
class-K probability at a leaf is its root's value plus, along the decision path, the change
of the node value at each split, credited to the split's feature. Averaged over a forest's
trees, ``p_K(x) = bias_K + sum_f c_f(x)`` exactly, where ``bias_K`` is the mean of the trees'
root values (the training class frequency the trees saw). The per-leaf contribution vectors
are computed once per tree (a pass over the tree's depth levels), then each pixel gathers
its leaf's vector (``apply``): a 512x512 image with 30 features and 50 trees takes a few
seconds. Contributions of the features of one **family** (the filter that made them:
``intensity``, ``gaussian``, ``gradient``, ``dog``, ``hessian``, ``local_std``,
``structure``, ...; ``c1_gaussian`` and so on for multi-channel images; ``context`` for the
features of an auto-context stage's probability channels) are summed.

This decomposes the last stage's estimator output, the *raw* forest probability; the
model's own probability also multiplies it by the class-prior correction learnt in training
and renormalises (``prior_corrected`` in the result says whether that changes it).

**Permutation importance**: the Dice of class K between the model's labels and a
reference (the image's label map, or the model's own labels of the unpermuted image), on
a uniform random sample of pixels, minus the same Dice after the rows of one family's
features are permuted together over those pixels (``repeats`` times, seeded). Features
of auto-context stages are those of the last stage (the earlier stages see the image
unpermuted).

Examples
--------
>>> import numpy as np
>>> from sklearn.ensemble import RandomForestClassifier
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(300, 3)); y = (X[:, 0] > 0).astype(int)
>>> rf = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
>>> bias, c = tree_contributions(rf, X, 1)
>>> bool(np.allclose(bias + c.sum(axis=1), rf.predict_proba(X)[:, 1], atol=1e-6))
True
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medseg.contract import check_input
from medseg.errors import ConfigError, InputError
from medseg.features.config import feature_names
from medseg.features.stack import iter_feature_rows
from medseg.image import Image
from medseg.ml.autocontext import add_context

log = logging.getLogger(__name__)

__all__ = ["ForestExplanation", "explain_pixel_classifier", "family_table", "feature_families", "has_trees",
           "permutation_importance", "tree_contributions"]


def _trees(estimator: Any) -> list[Any]:
    """The fitted ``DecisionTreeClassifier``s of a forest or a single tree (empty otherwise)."""
    if hasattr(estimator, "tree_") and hasattr(estimator.tree_, "children_left"):
        return [estimator]
    trees = getattr(estimator, "estimators_", None)
    if isinstance(trees, (list, tuple)) and trees and all(hasattr(t, "tree_") for t in trees):
        return list(trees)
    return []


def has_trees(estimator: Any) -> bool:
    """Whether ``estimator`` is a fitted decision tree or a forest of them (random forest,
    extra trees): one that `tree_contributions` decomposes.

    Examples
    --------
    >>> has_trees(object())
    False
    """
    return bool(_trees(estimator))


def _leaf_contributions(tree: Any, n_features: int, k: int) -> tuple[np.ndarray, float]:
    """Per node, the summed class-``k`` contributions ``(n_nodes, F)`` of the splits on its
    path (filled level by level), and the root's value."""
    t = tree.tree_
    value = t.value[:, 0, :].astype(np.float64)
    value = value / np.maximum(value.sum(axis=1, keepdims=True), 1e-300)
    v = value[:, k]
    n = t.node_count
    left, right, feat = t.children_left, t.children_right, t.feature
    out = np.zeros((n, n_features), np.float64)
    level = np.array([0])
    while level.size:
        inner = level[left[level] >= 0]
        if not inner.size:
            break
        for child in (left[inner], right[inner]):
            out[child] = out[inner]
            out[child, feat[inner]] += v[child] - v[inner]
        level = np.concatenate([left[inner], right[inner]])
    return out, float(v[0])


def tree_contributions(estimator: Any, X: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """Exact per-feature contributions to a tree ensemble's class-``k`` probability.

    Parameters
    ----------
    estimator : sklearn tree or forest
        A fitted ``DecisionTreeClassifier``, ``RandomForestClassifier`` or
        ``ExtraTreesClassifier``.
    X : ndarray, shape (n, F)
        Feature rows.
    k : int
        Column of ``predict_proba`` to explain.

    Returns
    -------
    bias : float
        Mean root value of the trees.
    contributions : ndarray of float32, shape (n, F)
        ``bias + contributions.sum(1) == estimator.predict_proba(X)[:, k]`` (to float rounding).

    Raises
    ------
    ConfigError
        The estimator is not a tree ensemble.
    """
    trees = _trees(estimator)
    if not trees:
        raise ConfigError(f"per-feature contributions need a tree model (random-forest, extra-trees, decision-tree); "
                          f"this model is a {type(estimator).__name__}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros(X.shape, np.float64)
    bias = 0.0
    leaves = estimator.apply(X) if len(trees) > 1 else trees[0].apply(X)[:, None]
    for i, tree in enumerate(trees):
        table, root = _leaf_contributions(tree, X.shape[1], k)
        out += table[leaves[:, i]]
        bias += root
    return bias / len(trees), (out / len(trees)).astype(np.float32)


def feature_families(image: Image, config: Any, n_own: int) -> list[str]:
    """The family of each feature of ``feature_names(image, config)``.

    Parameters
    ----------
    image : Image
        The image the features are computed on (with auto-context channels appended).
    config : FeatureConfig
    n_own : int
        Channels of the image itself; later channels are auto-context probabilities.

    Returns
    -------
    list of str
        One family per feature: the filter's name, prefixed ``c{k}_`` when the image has
        several channels of its own; ``context`` for auto-context channels.

    Examples
    --------
    >>> from medseg.features.config import FeatureConfig
    >>> feature_families(Image(np.zeros((16, 16))), FeatureConfig(features=("intensity", "gaussian"),
    ...                  sigmas=(1, 2)), 1)
    ['intensity', 'gaussian', 'gaussian']
    """
    cfg = config.resolve(image)
    chans = cfg.check_channels(image)
    one = Image(np.zeros(image.shape, np.float32), image.spacing, image.origin, image.direction)
    per: list[str] = []
    for f in cfg.features:
        per += [f] * len(feature_names(one, dataclasses.replace(cfg, features=(f,), channels=None)))
    out: list[str] = []
    for c in chans:
        if c >= n_own:
            out += ["context"] * len(per)
        else:
            out += [f"c{c}_{f}" if n_own > 1 else f for f in per]
    return out


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float(np.logical_and(a, b).sum()) / s


def permutation_importance(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, reference: np.ndarray,
                           groups: Sequence[str], *, repeats: int = 3, seed: int = 0) -> dict[str, dict[str, float]]:
    """The drop of Dice when each group of columns is permuted (rows shuffled together).

    Parameters
    ----------
    predict : callable
        ``predict(X) -> bool ndarray (n,)``: whether each row is the explained class.
    X : ndarray, shape (n, F)
    reference : ndarray of bool, shape (n,)
    groups : sequence of str, length F
        The group (family) of each column.
    repeats : int
        Permutations per group; the mean and standard deviation of the drop are returned.
    seed : int

    Returns
    -------
    dict
        ``{group: {"importance", "std", "n_features", "score"}}`` (``score``: the mean Dice
        with the group permuted), in the order the groups first appear; plus ``"__baseline__"``
        with the unpermuted Dice in ``score``.

    Examples
    --------
    >>> X = np.c_[np.arange(100.0), np.zeros(100)]
    >>> imp = permutation_importance(lambda x: x[:, 0] >= 50, X, np.arange(100) >= 50, ["a", "b"])
    >>> imp["a"]["importance"] > 0.3, imp["b"]["importance"]
    (True, 0.0)
    """
    if len(groups) != X.shape[1]:
        raise InputError(f"{len(groups)} group names for {X.shape[1]} feature columns")
    rng = np.random.default_rng(seed)
    base = _dice(predict(X), reference)
    out: dict[str, dict[str, float]] = {"__baseline__": {"score": base}}
    names = list(dict.fromkeys(groups))
    cols = {g: [i for i, x in enumerate(groups) if x == g] for g in names}
    for g in names:
        scores = []
        for _ in range(max(1, repeats)):
            Xp = X.copy()
            perm = rng.permutation(X.shape[0])
            Xp[:, cols[g]] = X[perm][:, cols[g]]
            scores.append(_dice(predict(Xp), reference))
        drops = base - np.asarray(scores)
        out[g] = {"importance": float(drops.mean()), "std": float(drops.std()), "n_features": len(cols[g]),
                  "score": float(np.mean(scores))}
    return out


@dataclass
class ForestExplanation:
    """What `explain_pixel_classifier` found.

    Attributes
    ----------
    label : int
        The explained class value.
    families : list of str
        The feature families, in feature order.
    contributions : dict of str to ndarray, or None
        ``{family: float32 (*spatial)}`` summed contributions to the raw class probability
        (``None`` for models that are not tree ensembles).
    bias : float or None
        The trees' mean root value: ``bias + sum of the family maps`` is the raw probability.
    raw_probability : ndarray or None
        The last stage's raw estimator probability of the class ``(*spatial)``.
    labels : ndarray
        The model's label map of the image.
    importance : dict
        `permutation_importance` by family (``__baseline__`` removed, see ``baseline``).
    baseline : float
        Dice of the unpermuted model against the reference on the sampled pixels.
    reference : str
        ``"labels"`` or ``"model prediction"``.
    notes : list of str
    details : dict
    """

    label: int
    families: list[str]
    contributions: dict[str, np.ndarray] | None
    bias: float | None
    raw_probability: np.ndarray | None
    labels: np.ndarray
    importance: dict[str, dict[str, float]]
    baseline: float
    reference: str
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def saliency(self) -> np.ndarray:
        """Sum over families of the absolute contributions, scaled to [0, 1] (zeros without contributions)."""
        if not self.contributions:
            return np.zeros(self.labels.shape, np.float32)
        s = np.sum([np.abs(v) for v in self.contributions.values()], axis=0).astype(np.float32)
        top = float(s.max())
        return s / top if top > 0 else s


def _last_stage_image(model: Any, image: Image) -> Image:
    """The image the last stage computes its features on (auto-context channels appended)."""
    ctx = getattr(model, "context_", None)
    if ctx is None:
        return image
    return add_context(image, ctx.predict_proba(image).array, ctx.classes_)


def explain_pixel_classifier(model: Any, image: Image, label: int, *, reference: Image | np.ndarray | None = None,
                             max_pixels: int = 65536, repeats: int = 3, seed: int = 0) -> ForestExplanation:
    """Contribution maps (tree models) and per-family permutation importance of a pixel classifier.

    Parameters
    ----------
    model : medseg.ml.PixelClassifier
        Fitted (``load_model`` of a random-forest, extra-trees, ... model folder).
    image : Image
        As the training images.
    label : int
        A class value of the model (``model.classes_``).
    reference : Image or ndarray, optional
        Label map of the image for the importance; default the model's own labels.
    max_pixels : int
        Pixels sampled (uniformly, seeded) for the permutation importance.
    repeats, seed : int
        See `permutation_importance`.

    Returns
    -------
    ForestExplanation
    """
    image = check_input(image, type(model))
    classes = [int(c) for c in np.asarray(model.classes_).tolist()]
    if int(label) not in classes:
        raise InputError(f"label {label} is not a class of this model; classes: {', '.join(map(str, classes))}")
    k = classes.index(int(label))
    notes: list[str] = []
    labels = np.asarray(model.predict(image).array)
    stage_img = _last_stage_image(model, image)
    cfg = model.feature_config_
    fams = feature_families(stage_img, cfg, image.n_channels)
    names = list(dict.fromkeys(fams))
    onehot = np.zeros((len(fams), len(names)), np.float32)
    onehot[np.arange(len(fams)), [names.index(f) for f in fams]] = 1.0
    trees = has_trees(model.estimator_)
    contrib = np.zeros((len(names), *image.shape), np.float32) if trees else None
    raw = np.zeros(image.shape, np.float32) if trees else None
    bias = None
    n = int(np.prod(image.shape))
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(n, size=min(n, max_pixels), replace=False))
    sample_mask = np.zeros(n, bool)
    sample_mask[pick] = True
    sample_mask = sample_mask.reshape(image.shape)
    rows_sampled, where_sampled = [], []
    for core, sel, rows in iter_feature_rows(stage_img, cfg, None):
        X = np.ascontiguousarray(rows.T)
        sub = sample_mask[core][sel]
        rows_sampled.append(X[sub])
        where_sampled.append(np.flatnonzero(sub))
        if trees:
            b, c = tree_contributions(model.estimator_, X, k)
            bias = b
            view = contrib[(slice(None), *core)]
            view[:, sel] = (c @ onehot).T
            raw[core][sel] = b + c.sum(axis=1)
    if trees:
        w = model.class_weights_
        prior = w is not None and not np.allclose(w, 1.0)
        if prior:
            notes.append("contributions decompose the forest's raw probability; the model's own probability also "
                         "applies the class-prior correction learnt in training")
    else:
        notes.append(f"{model.name} is not a tree model: no contribution maps, permutation importance only")
        prior = False
    Xs = np.concatenate(rows_sampled) if rows_sampled else np.zeros((0, len(fams)), np.float32)
    if reference is None:
        ref = labels.reshape(-1)[pick] == int(label)
        ref_name = "model prediction"
        notes.append("no label map given: the importance measures agreement with the model's own prediction")
    else:
        r = np.asarray(reference.array if isinstance(reference, Image) else reference)
        if r.shape != tuple(image.shape):
            raise InputError(f"the label map has shape {r.shape} but the image {tuple(image.shape)}")
        ref = r.reshape(-1)[pick] == int(label)
        ref_name = "labels"

    def predict(X: np.ndarray) -> np.ndarray:
        # the model's own rule (prior correction, tuned threshold) on feature rows
        model._set_jobs()
        p = model._proba_rows(X).T
        return np.asarray(model._labels_from_proba(p, None, image)) == int(label)

    imp = permutation_importance(predict, Xs, ref, fams, repeats=repeats, seed=seed)
    baseline = imp.pop("__baseline__")["score"]
    maps = None if contrib is None else {f: contrib[i] for i, f in enumerate(names)}
    details = {"pixels_sampled": int(Xs.shape[0]), "repeats": int(repeats), "seed": int(seed),
               "n_features": len(fams), "estimator": type(model.estimator_).__name__,
               "prior_corrected": prior, "autocontext_stages": len(model._stages()) - 1}
    return ForestExplanation(int(label), fams, maps, bias, raw, labels, imp, baseline, ref_name, notes, details)


def family_table(expl: ForestExplanation) -> list[Mapping[str, Any]]:
    """Rows ``family, importance, std, n_features, score`` sorted by importance (highest first)."""
    return sorted(({"family": f, **v} for f, v in expl.importance.items()), key=lambda r: -r["importance"])
