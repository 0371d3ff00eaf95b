"""Fitting one stage of a pixel classifier: sample training pixels, gather their features,
weight the classes, fit the estimator and tune the decision threshold.

`StageFitting` is the fitting part of [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier]
(a mixin: it sets the fitted attributes the segmenter defines). Training pixels follow the
convention of [`medseg.ml.sampling`][] (dense labels, or sparse scribbles with
``ignore_label``).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from medseg.contract import check_input
from medseg.errors import InputError
from medseg.features.config import FeatureConfig, feature_names
from medseg.features.stack import sample_features
from medseg.image import Image
from medseg.ml.estimators import TrainParams, feature_config, fit_estimator, validate_estimator
from medseg.ml.sampling import as_label_array, check_classes, draw_samples, training_mask
from medseg.progress import progress as show_progress
from medseg.roi import BACKGROUND, OUTSIDE_SHARE

log = logging.getLogger(__name__)

__all__ = ["OwnRows", "StageFitting"]


@dataclasses.dataclass(frozen=True)
class OwnRows:
    """Features of an image's own channels, computed while an earlier auto-context stage
    predicted the image; the next stage's training samples take them from here.

    Parameters
    ----------
    rows : numpy.ndarray
        ``(F, n)`` features of the image's first ``n_channels`` channels at the ``mask``
        voxels (all voxels when ``mask`` is ``None``), in C order.
    mask : numpy.ndarray or None
        Boolean, the image's spatial shape.
    config : FeatureConfig
        The configuration the rows were computed with.
    n_channels : int
        The image's own channels (those before the appended probabilities).
    """

    rows: np.ndarray
    mask: np.ndarray | None
    config: FeatureConfig
    n_channels: int


def _sample_with_own_rows(image: Image, cfg: FeatureConfig, idx: np.ndarray, own: OwnRows | None) -> np.ndarray:
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


@dataclasses.dataclass
class _Samples:
    """Training rows of one stage: features ``X`` ``(n, F)``, labels ``y`` ``(n,)``, the
    labelled-pixel count per class value (before sampling) and, with auto-context, the
    previous stage's foreground probability of each row."""

    X: np.ndarray
    y: np.ndarray
    totals: dict[int, int]
    context_fg: list[np.ndarray]
    outside: dict[int, int]  # rows drawn outside a background ROI, per class (not in the priors)


class StageFitting:
    """Fits one stage (mixed into [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier]; sets
    ``estimator_``, ``classes_``, ``class_weights_``, ``class_names_``, ``threshold_``,
    ``reject_below_``, ``feature_config_``, ``feature_names_``, ``n_channels_``, ``ndim_``
    and ``train_info_``)."""

    def _fit_stream(self, triples: Iterable[tuple[Any, ...]], n: int, *, options: TrainParams | None,
                    class_names: dict[int, str] | None, n_context: int = 0) -> Any:
        """Fit this stage on sampled pixels of ``triples`` ``(image, labels, roi[, own rows])``.

        ``n_context``: the last channels of the images are the previous auto-context stage's
        foreground probabilities. When the decision threshold is tuned on held-out pixels
        (binary dense labels), the stage then also learns which pixels it can leave to the
        previous stage at prediction time (a cascade): ``reject_below_`` is half the smallest
        previous-stage foreground probability among the held-out pixels this stage labels
        foreground (and at most the threshold), so pixels the previous stage finds clearly
        background skip this stage's features and trees. On DRIVE about half of each FOV is
        skipped and no label changed on the 20 held-out images of a 5-fold run.
        """
        opts = options if options is not None else self.options
        self.options = opts
        validate_estimator(self.build_estimator(self.params, 8, opts.seed), self.name)  # before any feature work
        rng = np.random.default_rng(opts.seed)
        data = self._sample_pixels(triples, n, opts, rng, n_context)
        classes = np.array(sorted(data.totals), dtype=np.int64)
        check_classes(classes, ignore_label=opts.ignore_label, n_pixels=sum(data.totals.values()))
        X, yv = data.X, data.y
        yi = np.searchsorted(classes, yv)
        sampled = np.bincount(yi, minlength=len(classes)).astype(float)
        # the class priors are those inside the ROI: the extra rows drawn outside it do not count
        sampled_in = sampled - np.array([data.outside.get(int(c), 0) for c in classes], float)
        if len(np.unique(yi)) < 2:
            raise InputError("the sampled training pixels contain one class only; raise samples_per_image")
        true = np.array([data.totals[c] for c in classes], float)
        ratio = (true / true.sum()) / np.maximum(sampled_in / sampled_in.sum(), 1e-12)  # true / sampled frequency
        dense = opts.ignore_label is None
        self.class_weights_ = ratio / ratio.max() if opts.prior_correction and dense else np.ones(len(classes))
        self.classes_ = classes
        self.threshold_ = self.reject_below_ = None
        tune = opts.threshold == "f1" and dense and len(classes) == 2 and X.shape[0] >= 200
        fit_rows = np.ones(X.shape[0], bool)
        if tune:
            fit_rows[rng.choice(X.shape[0], max(X.shape[0] * 15 // 100, 100), replace=False)] = False
        self.estimator_ = self.build_estimator(self.params, X.shape[1], opts.seed)
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
            if n_context and data.context_fg and positive.any():
                prev_fg = np.concatenate(data.context_fg)[~fit_rows][positive]
                self.reject_below_ = float(min(0.5 * prev_fg.min(), self.threshold_))
                log.info("cascade: pixels with previous-stage foreground probability < %.4f skip this stage",
                         self.reject_below_)
        self.class_names_ = {int(c): (class_names or {}).get(int(c), str(int(c))) for c in classes}
        self.train_info_ = {"n_images": n, "n_pixels": int(X.shape[0]), "class_pixels": {
            str(int(c)): int(t) for c, t in zip(classes, true)}, "sampled_pixels": {
            str(int(c)): int(s) for c, s in zip(classes, sampled)}}
        return self

    def _sample_pixels(self, triples: Iterable[tuple[Any, ...]], n: int, opts: TrainParams,
                       rng: np.random.Generator, n_context: int) -> _Samples:
        """Draw each image's training pixels and gather their features; sets
        ``feature_config_`` (resolved on the first image), ``feature_names_``,
        ``n_channels_`` and ``ndim_``."""
        n_per_image = opts.samples_per_image or self.default_samples_per_image
        xs, ys, totals, ctx_fg = [], [], {}, []
        outside_rows: dict[int, int] = {}
        cfg = None
        for item in show_progress(triples, total=n, desc="features", unit="img", enabled=n >= 3):
            image, lab, roi, own = item if len(item) == 4 else (*item, None)
            image = check_input(image, type(self))
            if cfg is None:
                cfg = feature_config(self.params, image.ndim).resolve(image)
                self.n_channels_, self.ndim_ = image.n_channels, image.ndim
                self.feature_names_ = feature_names(image, cfg)
            self._check_compatible(image, "training image")
            y = as_label_array(lab, image, "label map")
            r = None if roi is None else as_label_array(roi, image, "ROI")
            mask = training_mask(y, r, opts.ignore_label)
            outside = None
            if r is not None and getattr(self, "roi_outside_", None) == BACKGROUND:
                # the outside is background: a small share of the pixels comes from there
                outside = training_mask(y, None, opts.ignore_label) & ~(r > 0)
            vals, cnt = np.unique(y[mask], return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist()):
                totals[v] = totals.get(v, 0) + c
            if outside is None or not outside.any():
                idx = draw_samples(y, mask, n_per_image, balanced=opts.balance == "balanced", rng=rng)
            else:
                # the pixels inside are drawn as without an outside; the outside adds its share on top
                n_out = max(1, int(round(OUTSIDE_SHARE * n_per_image)))
                out_idx = draw_samples(y, outside, n_out, balanced=False, rng=rng)
                for v, c in zip(*np.unique(y.reshape(-1)[out_idx], return_counts=True)):
                    outside_rows[int(v)] = outside_rows.get(int(v), 0) + int(c)
                idx = np.sort(np.concatenate([
                    draw_samples(y, mask, n_per_image, balanced=opts.balance == "balanced", rng=rng), out_idx]))
            if idx.size:
                xs.append(_sample_with_own_rows(image, cfg, idx, own))
                ys.append(y.reshape(-1)[idx])
                if n_context:
                    arr = np.asarray(image.array)
                    ctx_fg.append(arr[-n_context:].reshape(n_context, -1)[:, idx].sum(axis=0))
        self.feature_config_ = cfg
        if not xs:  # nothing sampled: check_classes explains why
            return _Samples(np.empty((0, 0), np.float32), np.empty(0, np.int64), totals, ctx_fg, outside_rows)
        return _Samples(np.concatenate(xs), np.concatenate(ys), totals, ctx_fg, outside_rows)
