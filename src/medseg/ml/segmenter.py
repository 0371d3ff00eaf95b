"""The trainable pixel-classifier segmenter shared by every ML method.

:class:`PixelClassifier` is a :class:`~medseg.methods.base.Segmenter` with a
scikit-learn-like API: ``fit(images, labels, rois=None)``, ``predict(image)``,
``predict_proba(image)``, ``save(dir)``/``load(dir)``, and ``train(dataset, out_dir)``
for ``medseg train``. The concrete methods (``random-forest``, ``svm``, ...) in
:mod:`medseg.methods.ml` only choose the estimator and its ``Params``.

Training pixels follow the convention of :mod:`medseg.ml.sampling` (dense labels, or
sparse scribbles with ``ignore_label``). Features are computed block-wise
(:func:`medseg.features.iter_feature_rows`), so prediction on a large 3D volume keeps
a bounded working set; the estimator uses ``n_jobs`` cores.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medseg.errors import ConfigError, InputError
from medseg.features.stack import (
    FeatureConfig,
    feature_blocks,
    feature_names,
    feature_rows,
    iter_feature_rows,
    sample_features,
)
from medseg.image import Image, require_finite
from medseg.contract import Segmenter, check_input, label_like, refuse_params
from medseg.ml.estimators import (
    ESTIMATORS,
    FeatureParams,
    TrainParams,
    feature_config,
    fit_estimator,
    set_jobs,
)
from medseg.ml.sampling import check_classes, draw_samples, training_mask

log = logging.getLogger(__name__)

__all__ = ["PixelClassifier"]

_CONTEXT_TREE_DIVISOR = 3  # earlier auto-context stages get n_estimators // this many trees
_BATCH = 1 << 18  # rows per predict_proba call (bounds the (rows, F) matrix copy)


def _as_label_array(lab: Any, image: Image, what: str) -> np.ndarray:
    a = lab.array if isinstance(lab, Image) else np.asarray(lab)
    if isinstance(lab, Image) and lab.has_channels:
        raise InputError(f"{what} must be a single-channel label map, got shape {lab.array.shape}")
    if a.shape != image.shape:
        raise InputError(f"{what} shape {a.shape} does not match the image shape {image.shape}")
    if a.dtype.kind not in "biu":
        if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.array_equal(a, np.round(a)):
            a = a.astype(np.int64)
        else:
            raise InputError(f"{what} must hold integer class values, got {a.dtype}")
    return a


def _f1_threshold(p: np.ndarray, truth: np.ndarray, weight: np.ndarray) -> float:
    """The threshold on ``p`` maximising the ``weight``-weighted F1 of ``p >= t`` vs ``truth``."""
    order = np.argsort(-p, kind="stable")
    p, truth, weight = p[order], truth[order], weight[order]
    tp = np.cumsum(weight * truth)
    fp = np.cumsum(weight * ~truth)
    pos = tp[-1]
    f1 = 2 * tp / np.maximum(tp + fp + pos, 1e-12)
    # only cut between distinct probability values
    last = np.r_[p[1:] != p[:-1], True]
    k = int(np.argmax(np.where(last, f1, -1)))
    nxt = p[k + 1] if k + 1 < p.size else 0.0
    return float(np.clip((p[k] + nxt) / 2, 1e-6, 1.0))


def add_context(image: Image, prob: np.ndarray, classes: np.ndarray) -> Image:
    """``image`` with the class probabilities ``prob`` ``(K, *shape)`` appended as channels
    (the background class, value 0, is left out: it is one minus the others)."""
    arr = np.asarray(image.array, dtype=np.float32)
    arr = arr if image.has_channels else arr[None]
    keep = [i for i, c in enumerate(np.asarray(classes).tolist()) if c != 0] or list(range(prob.shape[0]))
    meta = {k: v for k, v in dict(image.meta).items() if k != "rgb"}
    return Image(np.concatenate([arr, np.asarray(prob, np.float32)[keep]]), image.spacing, image.origin,
                 image.direction, meta)


@dataclasses.dataclass(frozen=True)
class _OwnRows:
    """Features ``rows`` ``(F, n)`` of an image's first ``n_channels`` channels at the ``mask``
    voxels (all voxels when ``None``), computed with ``config`` while an earlier auto-context
    stage predicted the image; the next stage's training samples take them from here."""

    rows: np.ndarray
    mask: np.ndarray | None
    config: FeatureConfig
    n_channels: int


def _sample_with_own_rows(image: Image, cfg: FeatureConfig, idx: np.ndarray, own: _OwnRows | None) -> np.ndarray:
    """``sample_features(image, cfg, idx)``, taking the features of the image's own channels
    from ``own`` when it holds them (same values: features are computed per channel)."""
    if own is None or own.config != cfg or image.n_channels <= own.n_channels:
        return sample_features(image, cfg, idx)
    if own.mask is None:
        pos = idx
    else:
        flat = own.mask.reshape(-1)
        if not flat[idx].all():
            return sample_features(image, cfg, idx)
        pos = np.cumsum(flat)[idx] - 1  # rank of each sampled voxel among the mask's voxels
    rest = Image(image.array[own.n_channels:], image.spacing, image.origin, image.direction)
    return np.concatenate([own.rows[:, pos].T, sample_features(rest, cfg, idx)], axis=1)


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (Image, np.ndarray)):
        return [x]
    return list(x)


class PixelClassifier(Segmenter):
    """Per-pixel classification on a feature stack (base of the ML methods)."""

    family = "ml"
    dims = (2, 3)
    trainable = True
    Params: ClassVar[type] = FeatureParams
    TrainParams: ClassVar[type] = TrainParams
    #: training pixels per image when ``TrainParams.samples_per_image`` is not given
    default_samples_per_image: ClassVar[int] = 10000

    def __init__(self, params: Any = None, *, options: TrainParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        feature_config(self.params)  # validate feature names/options early (did-you-mean errors)
        self.options = options if options is not None else TrainParams()
        self.estimator_ = None
        self.classes_: np.ndarray | None = None
        self.class_names_: dict[int, str] = {}
        self.class_weights_: np.ndarray | None = None
        self.feature_config_: FeatureConfig | None = None
        self.feature_names_: list[str] = []
        self.n_channels_: int | None = None
        self.ndim_: int | None = None
        self.train_info_: dict[str, Any] = {}
        self.threshold_: float | None = None
        self.context_: PixelClassifier | None = None  # the previous auto-context stage
        #: pixels whose foreground probability from the previous stage is below this are
        #: left to that stage (see :meth:`_fit_stream`); ``None``: this stage classifies all
        self.reject_below_: float | None = None

    # ------------------------------------------------------------------ training
    def fit(self, images: Image | Sequence[Image], labels: Any, rois: Any = None, *,
            options: TrainParams | None = None, class_names: dict[int, str] | None = None) -> PixelClassifier:
        """Train on images and their (dense or scribble) label maps.

        Parameters
        ----------
        images : Image or sequence of Image
            2D/3D images (optionally multi-channel; all with the same channel count).
        labels : Image, ndarray or sequence of them
            Integer label maps on the images' grids (see :mod:`medseg.ml.sampling` for
            the scribble convention).
        rois : Image, ndarray or sequence, optional
            Masks (>0 inside) limiting the training pixels.
        options : TrainParams, optional
            Sampling/balancing options (default: ``self.options``).
        class_names : dict, optional
            Names of the label values, stored in the model.

        Returns
        -------
        self
        """
        imgs, labs, rs = _as_list(images), _as_list(labels), _as_list(rois)
        if not imgs:
            raise InputError("no training images given")
        if len(labs) != len(imgs) or (rs and len(rs) != len(imgs)):
            raise InputError(f"got {len(imgs)} images, {len(labs)} label maps and {len(rs)} ROIs; give one each")
        triples = list(zip(imgs, labs, rs or [None] * len(imgs)))
        return self._fit_stages(lambda: iter(triples), len(imgs), options=options, class_names=class_names)

    def _fit_stages(self, source: Callable[[], Iterable[tuple[Any, Any, Any]]], n: int, *,
                    options: TrainParams | None, class_names: dict[int, str] | None) -> PixelClassifier:
        """Fit with ``self.params.autocontext`` auto-context stages (``source()`` gives the
        training triples afresh each time it is called).

        Stage k+1 sees the image plus the class probabilities of stage k (background
        excluded) as extra channels. Probabilities on training images from a model that
        was fitted on them are over-confident exactly where the next stage samples, so the
        training images are split in two halves and each half gets its probabilities from
        a model fitted on the other half (cross-fitting); the stage kept for new images is
        fitted on all images. With a single image there is nothing to cross-fit with and
        the in-sample probabilities are used (the next stage samples other pixels).
        """
        opts = options if options is not None else self.options
        k = int(self.params.autocontext)
        if k == 0:
            self.context_ = None
            return self._fit_stream(source(), n, options=opts, class_names=class_names)
        lower = dataclasses.replace(self.params, autocontext=k - 1)
        if getattr(lower, "n_estimators", 0) >= 20:
            # earlier stages only provide context: fewer trees cut their fit and prediction time
            # (DRIVE 5-fold: half the trees F1 0.7805, a third 0.7804; fold 0 training 143 -> 92 s
            # from all to half the trees)
            lower = dataclasses.replace(lower, n_estimators=lower.n_estimators // _CONTEXT_TREE_DIVISOR)

        def subset(keep: set[int]):
            return lambda: (t for i, t in enumerate(source()) if i in keep)

        log.info("auto-context: fitting stage %d on all %d images", k, n)
        prev = type(self)(lower, options=opts)._fit_stages(source, n, options=opts, class_names=class_names)
        helpers: list[PixelClassifier] = []
        for h in ([set(range(0, n, 2)), set(range(1, n, 2))] if n >= 2 else []):
            log.info("auto-context: fitting a stage-%d model on %d of %d images (cross-fitting)", k, len(h), n)
            try:
                m = type(self)(lower, options=opts)._fit_stages(subset(h), len(h), options=opts,
                                                                class_names=class_names)
            except InputError as exc:  # e.g. a half whose labels hold one class only
                log.warning("auto-context: cross-fitting not possible (%s); using in-sample probabilities", exc)
                helpers = []
                break
            if not np.array_equal(m.classes_, prev.classes_):
                log.warning("auto-context: a half of the images lacks some classes; using in-sample probabilities")
                helpers = []
                break
            helpers.append(m)

        def with_probabilities():
            for i, (image, lab, roi) in enumerate(source()):
                image = check_input(image, type(self))
                ctx = helpers[1 - (i % 2)] if helpers else prev
                # the image's own features, computed once for the prediction and this stage's samples
                r = None if roi is None else _as_label_array(roi, image, "ROI") > 0
                rows = ctx._shared_rows(image, r)
                prob = ctx._proba_array(image, roi, shared=rows)
                own = None if rows is None else _OwnRows(rows, r, ctx.feature_config_, image.n_channels)
                yield add_context(image, prob, ctx.classes_), lab, roi, own

        stage_opts = dataclasses.replace(opts, seed=opts.seed + k)  # other pixels than the previous stage
        n_context = int((prev.classes_ != 0).sum()) if (prev.classes_ == 0).any() else 0
        self._fit_stream(with_probabilities(), n, options=stage_opts, class_names=class_names,
                         n_context=n_context)
        self.options = opts
        self.context_ = prev
        self.train_info_["autocontext"] = k
        return self

    def _fit_stream(self, triples: Iterable[tuple[Any, Any, Any]], n: int, *, options: TrainParams | None,
                    class_names: dict[int, str] | None, n_context: int = 0) -> PixelClassifier:
        """Fit this stage on sampled pixels of ``triples``.

        ``n_context``: the last channels of the images are the previous auto-context stage's
        foreground probabilities. When the decision threshold is tuned on held-out pixels
        (binary dense labels), the stage then also learns which pixels it can leave to the
        previous stage at prediction time (a cascade): ``reject_below_`` is half the smallest
        previous-stage foreground probability among the held-out pixels this stage labels
        foreground (and at most the threshold), so pixels the previous stage finds clearly
        background skip this stage's features and trees. On DRIVE about half of each FOV is
        skipped and no label changed on the 20 held-out images of a 5-fold run.
        """
        from tqdm.auto import tqdm

        opts = options if options is not None else self.options
        self.options = opts
        _validate_estimator(ESTIMATORS[self.name](self.params, 8, opts.seed), self.name)  # before any feature work
        rng = np.random.default_rng(opts.seed)
        n_per_image = opts.samples_per_image or self.default_samples_per_image
        base_cfg = feature_config(self.params)
        xs, ys, totals, ctx_fg = [], [], {}, []
        cfg = None
        for item in tqdm(triples, total=n, desc="features", unit="img", disable=n < 3):
            image, lab, roi, own = item if len(item) == 4 else (*item, None)
            image = check_input(image, type(self))
            if cfg is None:
                cfg = base_cfg.resolve(image)
                self.n_channels_, self.ndim_ = image.n_channels, image.ndim
                self.feature_names_ = feature_names(image, cfg)
            self._check_compatible(image, "training image")
            y = _as_label_array(lab, image, "label map")
            r = None if roi is None else _as_label_array(roi, image, "ROI")
            mask = training_mask(y, r, opts.ignore_label)
            vals, cnt = np.unique(y[mask], return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist()):
                totals[v] = totals.get(v, 0) + c
            idx = draw_samples(y, mask, n_per_image, balanced=opts.balance == "balanced", rng=rng)
            if idx.size:
                xs.append(_sample_with_own_rows(image, cfg, idx, own))
                ys.append(y.reshape(-1)[idx])
                if n_context:
                    arr = np.asarray(image.array)
                    ctx_fg.append(arr[-n_context:].reshape(n_context, -1)[:, idx].sum(axis=0))
        classes = np.array(sorted(totals), dtype=np.int64)
        check_classes(classes, ignore_label=opts.ignore_label, n_pixels=sum(totals.values()))
        X, yv = np.concatenate(xs), np.concatenate(ys)
        yi = np.searchsorted(classes, yv)
        sampled = np.bincount(yi, minlength=len(classes)).astype(float)
        if len(np.unique(yi)) < 2:
            raise InputError("the sampled training pixels contain one class only; raise samples_per_image")
        true = np.array([totals[c] for c in classes], float)
        ratio = (true / true.sum()) / np.maximum(sampled / sampled.sum(), 1e-12)  # true / sampled frequency
        dense = opts.ignore_label is None
        self.class_weights_ = ratio / ratio.max() if opts.prior_correction and dense else np.ones(len(classes))
        self.classes_ = classes
        self.threshold_ = self.reject_below_ = None
        tune = opts.threshold == "f1" and dense and len(classes) == 2 and X.shape[0] >= 200
        fit_rows = np.ones(X.shape[0], bool)
        if tune:
            fit_rows[rng.choice(X.shape[0], max(X.shape[0] * 15 // 100, 100), replace=False)] = False
        self.estimator_ = ESTIMATORS[self.name](self.params, X.shape[1], opts.seed)
        log.info("fitting %s on %d pixels x %d features", self.name, int(fit_rows.sum()), X.shape[1])
        fit_estimator(self.estimator_, X[fit_rows], yi[fit_rows], self.params.n_jobs)
        if len(getattr(self.estimator_, "classes_", classes)) != len(classes):
            raise InputError("a class is missing from the fitted pixels; raise samples_per_image")
        if tune:
            self._set_jobs()
            held = self._proba_rows(X[~fit_rows])[:, 1]
            self.threshold_ = _f1_threshold(held, yi[~fit_rows] == 1, ratio[yi[~fit_rows]])
            log.info("decision threshold %.3f (max F1 on held-out pixels)", self.threshold_)
            positive = held >= self.threshold_
            if n_context and ctx_fg and positive.any():
                prev_fg = np.concatenate(ctx_fg)[~fit_rows][positive]
                self.reject_below_ = float(min(0.5 * prev_fg.min(), self.threshold_))
                log.info("cascade: pixels with previous-stage foreground probability < %.4f skip this stage",
                         self.reject_below_)
        self.feature_config_ = cfg
        self.class_names_ = {int(c): (class_names or {}).get(int(c), str(int(c))) for c in classes}
        self.train_info_ = {"n_images": n, "n_pixels": int(X.shape[0]), "class_pixels": {
            str(int(c)): int(t) for c, t in zip(classes, true)}, "sampled_pixels": {
            str(int(c)): int(s) for c, s in zip(classes, sampled)}}
        return self

    def train(self, dataset, out_dir: str | Path, options: TrainParams | None = None) -> PixelClassifier:
        """Train on a :class:`medseg.io.Dataset` (labels required; ROIs used when present)
        and write the model folder ``out_dir`` atomically."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder; choose another --out")
        cases = [c for c in dataset.cases]
        if not cases:
            raise InputError(f"{dataset.root}: the dataset has no cases")

        def stream():
            for case in cases:
                img = dataset.load_image(case)
                require_finite(img.array, case=case.case_id, before="training")
                lab = dataset.load_label(case, img)
                if lab is None:
                    raise InputError(f"case '{case.case_id}' has no label map; every training case needs one")
                yield img, lab, dataset.load_roi(case, img)

        names = {int(k): str(v) for k, v in (dataset.label_names or {}).items()}
        self._fit_stages(stream, len(cases), options=options, class_names=names)
        self.train_info_["dataset"] = str(dataset.root)
        self.save(out)
        return self

    # ------------------------------------------------------------------ prediction
    def _check_fitted(self) -> None:
        if self.estimator_ is None:
            raise ConfigError(f"method '{self.name}' is not trained: call fit(...) or load a model folder first")

    def _check_compatible(self, image: Image, what: str = "image") -> None:
        if self.n_channels_ is not None and image.n_channels != self.n_channels_:
            raise InputError(f"the model was trained on {self.n_channels_}-channel images but this {what} has "
                             f"{image.n_channels} channel(s); convert it the same way as the training images")
        if self.ndim_ is not None and image.ndim != self.ndim_:
            raise InputError(f"the model was trained on {self.ndim_}D images but this {what} is {image.ndim}D")

    def _proba_rows(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((X.shape[0], len(self.classes_)), np.float32)
        for s in range(0, X.shape[0], _BATCH):
            # pixel-major rows: trees read a pixel's features from one place (DRIVE, 230k rows
            # x 160 features: 0.3 s less per image than the feature-major view)
            p = self.estimator_.predict_proba(np.ascontiguousarray(X[s:s + _BATCH])) * self.class_weights_
            p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
            out[s:s + _BATCH] = p
        return out

    def _stages(self) -> list[PixelClassifier]:
        out, m = [], self
        while m is not None:
            out.append(m)
            m = m.context_
        return out

    def _shared_rows(self, image: Image, mask: np.ndarray | None) -> np.ndarray | None:
        """Features ``(F, n)`` of ``image``'s own channels at the ``mask`` voxels (all voxels
        without one), computed once for every auto-context stage.

        Each stage's features are the previous stages' features of the image's channels (the
        same when all stages use the same configuration, as they do by default) followed by
        the features of the appended probability channels: features are computed per
        channel, so computing the image's part once gives the same values (DRIVE: 0.1-0.3 s
        less per 565x584 RGB image). ``None`` (compute per stage, block-wise) when the
        stages' configurations differ or the whole stack does not fit the memory bound."""
        stages = self._stages()
        cfg = stages[0].feature_config_
        if cfg is None or cfg.channels is not None or any(m.feature_config_ != cfg for m in stages[1:]):
            return None
        stages[-1]._check_compatible(image)
        if len(feature_blocks(image, cfg, extra_features=len(self.feature_names_ or []))) > 1:
            return None
        return feature_rows(image, cfg, mask)

    def _proba_array(self, image: Image, roi: Any = None, stack: np.ndarray | None = None, *,
                     shared: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities; ``stack``: this stage's precomputed ``(F, *shape)`` features
        (no auto-context); ``shared``: the precomputed ``(F, n)`` features of the image's own
        channels at the ROI voxels (see :meth:`_shared_rows`)."""
        self._check_fitted()
        image = check_input(image, type(self))
        r = None if roi is None else _as_label_array(roi, image, "ROI") > 0
        rows = None
        todo = r  # the voxels this stage classifies (None: all)
        easy = None  # voxels left to the previous stage (cascade)
        if self.context_ is not None:
            if stack is not None:
                raise ConfigError("a precomputed feature stack cannot be used with auto-context stages")
            ctx = self.context_
            if shared is None:
                shared = self._shared_rows(image, r)
            n_own = image.n_channels
            prev = ctx._proba_array(image, roi, shared=shared)
            image = add_context(image, prev, ctx.classes_)
            if self.reject_below_ is not None and np.array_equal(ctx.classes_, self.classes_):
                easy = np.delete(prev, np.flatnonzero(ctx.classes_ == 0), axis=0).sum(axis=0) < self.reject_below_
                if r is not None:
                    easy &= r
                todo = ~easy if r is None else r & ~easy
            if shared is not None:
                probs = Image(image.array[n_own:], image.spacing, image.origin, image.direction)
                own = shared if easy is None else shared[:, ~(easy[r] if r is not None else easy.reshape(-1))]
                rows = np.concatenate([own, feature_rows(probs, self.feature_config_, todo)])
        elif shared is not None:
            rows = shared
        elif stack is not None:
            rows = stack.reshape(stack.shape[0], -1) if r is None else stack[:, r]
        self._check_compatible(image)
        names = feature_names(image, self.feature_config_)
        if names != self.feature_names_:
            raise InputError(f"the image gives features {names[:3]}... but the model expects "
                             f"{self.feature_names_[:3]}... ({len(self.feature_names_)} features)")
        prob = np.zeros((len(self.classes_), *image.shape), np.float32)
        bg = np.flatnonzero(self.classes_ == 0)
        whole = tuple(slice(0, s) for s in image.shape)
        blocks = ([(whole, np.ones(image.shape, bool) if todo is None else todo, rows)] if rows is not None else
                  iter_feature_rows(image, self.feature_config_, todo))
        self._set_jobs()
        for core, sel, block_rows in blocks:
            if block_rows.shape[1]:
                view = prob[(slice(None), *core)]
                view[:, sel] = self._proba_rows(block_rows.T).T
        if easy is not None:
            prob[:, easy] = prev[:, easy]
        if r is not None and bg.size:
            prob[bg[0]][~r] = 1.0
        return prob

    def _set_jobs(self) -> None:
        set_jobs(self.estimator_, self.params.n_jobs)

    def _labels_from_proba(self, prob: np.ndarray, roi: Any, image: Image) -> np.ndarray:
        if self.threshold_ is not None and len(self.classes_) == 2:
            lab = self.classes_[(prob[1] >= self.threshold_).astype(np.intp)]
        else:
            lab = self.classes_[np.argmax(prob, axis=0)]
        if roi is not None:
            lab[_as_label_array(roi, image, "ROI") == 0] = 0
        return lab

    def predict_proba(self, image: Image, roi: Any = None) -> Image:
        """Class probabilities ``(K, *image.shape)`` float32 (class order: ``classes_``).

        Outside ``roi`` the background class (value 0) has probability 1 (all zeros when
        no class is 0)."""
        image = check_input(image, type(self))
        prob = self._proba_array(image, roi)
        return Image(prob, image.spacing, image.origin, image.direction,
                     {**dict(image.meta), "classes": self.classes_.tolist()})

    def predict(self, image: Image, roi: Any = None) -> Image:
        """Label map on ``image``'s grid (class values; 0 outside ``roi``)."""
        image = check_input(image, type(self))
        prob = self._proba_array(image, roi)
        return label_like(image, self._labels_from_proba(prob, roi, image), method=self.name)

    def __call__(self, image: Image) -> Image:
        return self.predict(image)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (``model.skops`` + ``model.json``) atomically."""
        from medseg.ml.persist import save_model

        self._check_fitted()
        return save_model(self, Path(directory))

    @classmethod
    def load(cls, directory: str | Path, params: Any = None) -> PixelClassifier:
        """Load a model folder written by :meth:`save` (refuses tampered/unsafe files).

        ``params`` must be empty: a pixel classifier's parameters are fixed by training.
        """
        from medseg.ml.persist import load_model_folder

        refuse_params(cls, params)
        return load_model_folder(cls, Path(directory))


def _validate_estimator(est: Any, name: str) -> None:
    """Check scikit-learn parameters up front, so a bad flag fails before features are computed."""
    from medseg.errors import ConfigError

    parts = [est] + [v for v in est.get_params(deep=True).values() if hasattr(v, "get_params")]
    for part in parts:
        check = getattr(part, "_validate_params", None)
        if check is None:
            continue
        try:
            check()
        except (ValueError, TypeError) as exc:
            msg = str(exc).replace(f"{type(part).__name__}", f"'{name}'")
            raise ConfigError(f"invalid parameter for method '{name}': {msg}") from None

