"""Prediction with a fitted pixel classifier: class probabilities block by block, through
the chain of auto-context stages, and label maps from them.

`Prediction` is the prediction part of [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier]
(a mixin: it reads the fitted attributes the segmenter defines). Features are computed
block-wise ([`iter_feature_rows`][medseg.features.stack.iter_feature_rows]), so prediction on a large 3D
volume keeps a bounded working set; the estimator uses ``n_jobs`` cores.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from medseg.contract import check_input, label_like
from medseg.errors import ConfigError, InputError
from medseg.features.stack import feature_blocks, feature_names, feature_rows, iter_feature_rows
from medseg.image import Image
from medseg.ml.autocontext import add_context
from medseg.ml.estimators import set_jobs
from medseg.ml.sampling import as_label_array

__all__ = ["Prediction"]

_BATCH = 1 << 18  # rows per predict_proba call (bounds the (rows, F) matrix copy)


class Prediction:
    """Probabilities and labels of a fitted pixel classifier (mixed into
    [`PixelClassifier`][medseg.ml.segmenter.PixelClassifier], whose attributes it reads:
    ``estimator_``, ``classes_``, ``class_weights_``, ``feature_config_``,
    ``feature_names_``, ``n_channels_``, ``ndim_``, ``threshold_``, ``reject_below_`` and
    ``context_``, the previous auto-context stage)."""

    def predict_proba(self, image: Image, roi: Any = None) -> Image:
        """Class probabilities of every pixel.

        Parameters
        ----------
        image : Image
            Shape ``([C,] *spatial)``, as the training images.
        roi : Image or ndarray, optional
            Shape ``spatial``; only pixels ``> 0`` are classified.

        Returns
        -------
        Image
            ``(K, *spatial)`` float32 in the class order ``classes_``, summing to 1; outside
            ``roi`` the background class (value 0) has probability 1 (all zeros when no
            class is 0). ``meta["classes"]`` lists the class values.
        """
        image = check_input(image, type(self))
        prob = self._proba_array(image, roi)
        return Image(prob, image.spacing, image.origin, image.direction,
                     {**dict(image.meta), "classes": self.classes_.tolist()})

    def predict(self, image: Image, roi: Any = None) -> Image:
        """Label map of ``image``.

        Parameters
        ----------
        image : Image
            Shape ``([C,] *spatial)``, as the training images.
        roi : Image or ndarray, optional
            Shape ``spatial``; pixels outside it are labelled 0.

        Returns
        -------
        Image
            Integer label map (the class values), shape ``spatial``, on ``image``'s grid.
        """
        image = check_input(image, type(self))
        prob = self._proba_array(image, roi)
        return label_like(image, self._labels_from_proba(prob, roi, image), method=self.name)

    def __call__(self, image: Image) -> Image:
        """`predict` without an ROI (the [`Segmenter`][medseg.contract.Segmenter] call)."""
        return self.predict(image)

    # ------------------------------------------------------------------ internals
    def _check_fitted(self) -> None:
        if self.estimator_ is None:
            raise ConfigError(f"method '{self.name}' is not trained: call fit(...) or load a model folder first")

    def _check_compatible(self, image: Image, what: str = "image") -> None:
        if self.n_channels_ is not None and image.n_channels != self.n_channels_:
            raise InputError(f"the model was trained on {self.n_channels_}-channel images but this {what} has "
                             f"{image.n_channels} channel(s); convert it the same way as the training images")
        if self.ndim_ is not None and image.ndim != self.ndim_:
            raise InputError(f"the model was trained on {self.ndim_}D images but this {what} is {image.ndim}D")

    def _set_jobs(self) -> None:
        set_jobs(self.estimator_, self.params.n_jobs)

    def _proba_rows(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, K)`` of feature rows ``X`` ``(n, F)``, prior-corrected."""
        out = np.empty((X.shape[0], len(self.classes_)), np.float32)
        for s in range(0, X.shape[0], _BATCH):
            # pixel-major rows: trees read a pixel's features from one place (DRIVE, 230k rows
            # x 160 features: 0.3 s less per image than the feature-major view)
            p = self.estimator_.predict_proba(np.ascontiguousarray(X[s:s + _BATCH])) * self.class_weights_
            p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
            out[s:s + _BATCH] = p
        return out

    def _stages(self) -> list[Any]:
        """This stage and its auto-context predecessors, the last stage first."""
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
        """Class probabilities ``(K, *spatial)``; ``stack``: this stage's precomputed
        ``(F, *spatial)`` features (no auto-context); ``shared``: the precomputed ``(F, n)``
        features of the image's own channels at the ROI voxels (see `_shared_rows`)."""
        self._check_fitted()
        image = check_input(image, type(self))
        r = None if roi is None else as_label_array(roi, image, "ROI") > 0
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

    def _labels_from_proba(self, prob: np.ndarray, roi: Any, image: Image) -> np.ndarray:
        """Class values ``spatial`` from probabilities ``(K, *spatial)``: the tuned threshold
        for two classes, else the most probable class; 0 outside ``roi``."""
        if self.threshold_ is not None and len(self.classes_) == 2:
            lab = self.classes_[(prob[1] >= self.threshold_).astype(np.intp)]
        else:
            lab = self.classes_[np.argmax(prob, axis=0)]
        if roi is not None:
            lab[as_label_array(roi, image, "ROI") == 0] = 0
        return lab
