"""The interactive path: fit on scribbles of one image and predict that image at once.

The web app calls `fit_predict_scribbles` after every stroke. The feature stack is
computed once and used for both training and prediction, and the default forest is
small, so a 512x512 image takes well under 2 s on 2 cores.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from medseg.contract import check_input, label_like
from medseg.errors import ConfigError, InputError, suggest
from medseg.features.stack import feature_stack
from medseg.image import Image
from medseg.ml.classifiers import ML_METHODS
from medseg.ml.estimators import TrainParams, feature_config, fit_estimator
from medseg.ml.sampling import check_classes, draw_samples, training_mask
from medseg.ml.segmenter import PixelClassifier

log = logging.getLogger(__name__)

__all__ = ["fit_predict_scribbles"]


def _classifier(method: str | type[PixelClassifier]) -> type[PixelClassifier]:
    """The ML method class named ``method`` (or ``method`` itself when it is one)."""
    if isinstance(method, type) and issubclass(method, PixelClassifier):
        return method
    by_name = {cls.name: cls for cls in ML_METHODS}
    if method not in by_name:
        raise InputError(f"method '{method}' is not an ML pixel classifier{suggest(str(method), by_name)}; "
                         f"choose one of {', '.join(by_name)}")
    return by_name[method]


def fit_predict_scribbles(image: Image, scribbles: Image | np.ndarray, *,
                          method: str | type[PixelClassifier] = "random-forest", ignore_label: int = 0,
                          roi: Any = None, samples: int = 50000, seed: int = 0,
                          **params: Any) -> tuple[Image, Image, PixelClassifier]:
    """Train ``method`` on the scribbled pixels of ``image`` and segment ``image``.

    Parameters
    ----------
    image : Image
        2D or 3D image, shape ``([C,] *spatial)``.
    scribbles : Image or ndarray
        Integer map, shape ``spatial``: ``ignore_label`` (default 0) = not scribbled,
        other values = classes (ilastik convention: 1..K).
    method : str or PixelClassifier subclass
        An ML method (its name, e.g. ``"random-forest"``, or its class).
    ignore_label : int
        Value of unscribbled pixels.
    roi : Image or ndarray, optional
        Shape ``spatial``; only pixels inside it are trained on and predicted (0 outside).
    samples : int
        Cap on the scribbled pixels used (balanced per class).
    seed : int
        Random seed for sampling and the estimator.
    **params
        Method parameters (``n_estimators=...``, ``sigmas=...``); the method's
        ``interactive_params`` are the defaults (a smaller forest, one stage).

    Returns
    -------
    labels : Image
        Label map (scribble class values), shape ``spatial``.
    probabilities : Image
        ``(K, *spatial)`` float32.
    model : PixelClassifier
        The fitted segmenter (can be saved, or applied to other images).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.testing import disc_phantom
    >>> img, truth = disc_phantom((64, 64), seed=0)
    >>> s = np.zeros((64, 64), np.uint8); s[::7, ::7] = truth.array[::7, ::7] + 1
    >>> labels, prob, model = fit_predict_scribbles(img, s)
    >>> sorted(np.unique(labels.array).tolist())
    [1, 2]
    """
    cls = _classifier(method)
    # one stage by default: auto-context needs several images to cross-fit and would double the time
    model = cls(**{**cls.interactive_params, **params})
    if int(model.params.autocontext):
        raise ConfigError("autocontext is not available when fitting scribbles on one image interactively; "
                          "train with `medseg train` (or fit()) for auto-context stages")
    opts = TrainParams(samples_per_image=samples, ignore_label=ignore_label, seed=seed, prior_correction=False)
    model.options = opts
    image = check_input(image, cls)
    cfg = feature_config(model.params, image.ndim).resolve(image)
    scr = scribbles.array if isinstance(scribbles, Image) else np.asarray(scribbles)
    if scr.shape != image.shape:
        raise InputError(f"scribble map shape {scr.shape} does not match the image shape {image.shape}")
    r = None if roi is None else (roi.array if isinstance(roi, Image) else np.asarray(roi))
    mask = training_mask(scr, r, ignore_label)
    classes = np.unique(scr[mask])
    check_classes(classes, ignore_label=ignore_label, n_pixels=int(mask.sum()))
    stack, names = feature_stack(image, cfg)
    idx = draw_samples(scr, mask, samples, balanced=True, rng=np.random.default_rng(seed))
    X = stack.reshape(stack.shape[0], -1)[:, idx].T
    y = np.searchsorted(classes, scr.reshape(-1)[idx])
    model.estimator_ = fit_estimator(cls.build_estimator(model.params, X.shape[1], seed), X, y, model.params.n_jobs)
    model.classes_ = classes.astype(np.int64)
    model.class_weights_ = np.ones(len(classes))
    model.class_names_ = {int(c): str(int(c)) for c in classes}
    model.feature_config_, model.feature_names_ = cfg, names
    model.n_channels_, model.ndim_ = image.n_channels, image.ndim
    model.train_info_ = {"n_images": 1, "n_pixels": int(idx.size), "scribbles": True}
    prob = model._proba_array(image, r, stack=stack)
    labels = label_like(image, model._labels_from_proba(prob, r, image), method=cls.name)
    proba = Image(prob, image.spacing, image.origin, image.direction, {"classes": classes.tolist()})
    return labels, proba, model
