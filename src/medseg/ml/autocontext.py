"""Auto-context (ilastik's): a chain of stages, each trained on the image plus the previous
stage's class probabilities as extra channels.

`add_context` appends the probabilities; `AutoContext` is the multi-stage
fitting part of [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier] (a mixin), with
cross-fitted training probabilities. Prediction through the chain is in
[`medseg.ml.prediction`][].
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from medseg.contract import check_input
from medseg.errors import InputError
from medseg.image import Image
from medseg.ml.estimators import TrainParams
from medseg.ml.fitting import OwnRows
from medseg.ml.sampling import as_label_array

log = logging.getLogger(__name__)

__all__ = ["AutoContext", "add_context"]

_CONTEXT_TREE_DIVISOR = 3  # earlier auto-context stages get n_estimators // this many trees

Source = Callable[[], Iterable[tuple[Any, Any, Any]]]


def add_context(image: Image, prob: np.ndarray, classes: np.ndarray) -> Image:
    """``image`` with class probabilities appended as channels.

    The background class (value 0) is left out: it is one minus the others.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    prob : numpy.ndarray
        ``(K, *spatial)`` class probabilities in the order of ``classes``.
    classes : numpy.ndarray
        ``(K,)`` class values.

    Returns
    -------
    Image
        ``(C + K', *spatial)`` float32 (``K'`` the non-background classes, or all ``K`` when
        none is 0), same geometry; ``meta["rgb"]`` is dropped.

    Examples
    --------
    >>> out = add_context(Image(np.zeros((2, 3))), np.full((2, 2, 3), 0.5), np.array([0, 1]))
    >>> out.shape, out.n_channels
    ((2, 3), 2)
    """
    arr = np.asarray(image.array, dtype=np.float32)
    arr = arr if image.has_channels else arr[None]
    keep = [i for i, c in enumerate(np.asarray(classes).tolist()) if c != 0] or list(range(prob.shape[0]))
    meta = {k: v for k, v in dict(image.meta).items() if k != "rgb"}
    return Image(np.concatenate([arr, np.asarray(prob, np.float32)[keep]]), image.spacing, image.origin,
                 image.direction, meta)


def _subset(source: Source, keep: set[int]) -> Source:
    """A source giving only the triples whose position is in ``keep``."""
    return lambda: (t for i, t in enumerate(source()) if i in keep)


class AutoContext:
    """Fits the chain of auto-context stages (mixed into
    [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier]; sets ``context_``, the previous stage)."""

    def _fit_stages(self, source: Source, n: int, *, options: TrainParams | None,
                    class_names: dict[int, str] | None) -> Any:
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

        log.info("auto-context: fitting stage %d on all %d images", k, n)
        prev = self._stage_model(lower, opts)._fit_stages(source, n, options=opts, class_names=class_names)
        helpers = self._cross_fit(source, n, lower, prev, opts, class_names)

        def with_probabilities() -> Iterator[tuple[Any, Any, Any, OwnRows | None]]:
            for i, (image, lab, roi) in enumerate(source()):
                image = check_input(image, type(self))
                ctx = helpers[1 - (i % 2)] if helpers else prev
                # the image's own features, computed once for the prediction and this stage's samples
                ctx_roi = roi
                r = None if ctx_roi is None else as_label_array(ctx_roi, image, "ROI") > 0
                rows = ctx._shared_rows(image, r)
                prob = ctx._proba_array(image, ctx_roi, shared=rows)
                own = None if rows is None else OwnRows(rows, r, ctx.feature_config_, image.n_channels)
                yield add_context(image, prob, ctx.classes_), lab, roi, own

        stage_opts = dataclasses.replace(opts, seed=opts.seed + k)  # other pixels than the previous stage
        n_context = int((prev.classes_ != 0).sum()) if (prev.classes_ == 0).any() else 0
        self._fit_stream(with_probabilities(), n, options=stage_opts, class_names=class_names,
                         n_context=n_context)
        self.options = opts
        self.context_ = prev
        self.train_info_["autocontext"] = k
        return self

    def _stage_model(self, params: Any, opts: TrainParams) -> Any:
        """An unfitted earlier stage with this model's ROI policy."""
        stage = type(self)(params, options=opts)
        stage.roi_outside_ = self.roi_outside_
        return stage

    def _cross_fit(self, source: Source, n: int, lower: Any, prev: Any, opts: TrainParams,
                   class_names: dict[int, str] | None) -> list[Any]:
        """Two stage-``k`` models, each fitted on half of the images (even, odd positions);
        empty when there is a single image or a half cannot be fitted with every class."""
        helpers: list[Any] = []
        for h in ([set(range(0, n, 2)), set(range(1, n, 2))] if n >= 2 else []):
            log.info("auto-context: fitting a stage-%d model on %d of %d images (cross-fitting)",
                     int(self.params.autocontext), len(h), n)
            try:
                m = self._stage_model(lower, opts)._fit_stages(_subset(source, h), len(h), options=opts,
                                                               class_names=class_names)
            except InputError as exc:  # e.g. a half whose labels hold one class only
                log.warning("auto-context: cross-fitting not possible (%s); using in-sample probabilities", exc)
                return []
            if not np.array_equal(m.classes_, prev.classes_):
                log.warning("auto-context: a half of the images lacks some classes; using in-sample probabilities")
                return []
            helpers.append(m)
        return helpers
