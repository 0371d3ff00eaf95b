"""The trainable pixel-classifier segmenter shared by every ML method.

`PixelClassifier` is a [`Segmenter`][medseg.contract.Segmenter] with a
scikit-learn-like API: ``fit(images, labels, rois=None)``, ``predict(image)``,
``predict_proba(image)``, ``save(dir)``/``load(dir)``, and ``train(dataset, out_dir)``
for ``medseg train``. The concrete methods (``random-forest``, ``svm``, ...) in
[`medseg.ml.classifiers`][] choose the estimator (``build_estimator``) and its ``Params``.

The class is assembled from its parts: fitting one stage ([`medseg.ml.fitting`][]), the
auto-context chain ([`medseg.ml.autocontext`][]) and prediction
([`medseg.ml.prediction`][]); model folders are read and written by
[`medseg.ml.persist`][], which this module feeds with the fitted attributes.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from medseg.config import from_dict, to_dict
from medseg.contract import Segmenter, refuse_params
from medseg.errors import ConfigError, InputError, ModelError
from medseg.features.config import FeatureConfig
from medseg.image import Image, require_finite
from medseg.ml.autocontext import AutoContext
from medseg.ml.estimators import FeatureParams, TrainParams, feature_config
from medseg.ml.fitting import StageFitting
from medseg.ml.persist import StoredStage, read_model_folder, write_model_folder
from medseg.ml.prediction import Prediction
from medseg.roi import BACKGROUND, OUTSIDE_SHARE, UNKNOWN, outside_policy, roi_record

log = logging.getLogger(__name__)

__all__ = ["PixelClassifier"]


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (Image, np.ndarray)):
        return [x]
    return list(x)


def _probability(value: Any, key: str) -> float | None:
    """``None`` or a probability in [0, 1] (a decision bound read from model.json)."""
    if value is None:
        return None
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also false for NaN
        raise ValueError(f"{key} must be a probability in [0, 1], got {value!r}")
    return v


class PixelClassifier(AutoContext, StageFitting, Prediction, Segmenter):
    """Per-pixel classification on a feature stack (base of the ML methods).

    A subclass sets ``name``, ``summary``, ``Params`` (a subclass of
    [`FeatureParams`][medseg.ml.estimators.FeatureParams]) and `build_estimator`.

    Parameters
    ----------
    params : Params, dict or None
        The method's parameters (feature options plus the estimator's own).
    options : TrainParams, optional
        Sampling, class-balance and threshold options for `fit` and `train`.
    **kwargs
        Parameters by name, overriding ``params``.

    Attributes
    ----------
    classes_ : numpy.ndarray
        ``(K,)`` the class values, the order of the probability channels.
    threshold_ : float or None
        Foreground-probability threshold tuned for F1 (binary dense labels), else ``None``.
    context_ : PixelClassifier or None
        The previous auto-context stage.
    """

    family = "ml"
    dims = (2, 3)
    trainable = True
    Params: ClassVar[type] = FeatureParams
    TrainParams: ClassVar[type] = TrainParams
    #: training pixels per image when ``TrainParams.samples_per_image`` is not given
    default_samples_per_image: ClassVar[int] = 10000
    #: parameter defaults of the interactive scribble path ([`medseg.ml.fit_predict_scribbles`][])
    interactive_params: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: Any = None, *, options: TrainParams | None = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        feature_config(self.params)  # validate feature names/options early (did-you-mean errors)
        self.options = options if options is not None else TrainParams()
        self.estimator_: Any = None
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
        #: left to that stage (see `_fit_stream`); ``None``: this stage classifies all
        self.reject_below_: float | None = None
        #: what the training ROIs meant ([`medseg.roi`][]): "background" (the outside is learnt),
        #: "unknown" (predictions need an ROI) or None (trained without ROIs)
        self.roi_outside_: str | None = None

    @classmethod
    def build_estimator(cls, params: Any, n_features: int, seed: int) -> Any:
        """The unfitted scikit-learn classifier (with ``predict_proba``) for ``params``.

        Parameters
        ----------
        params : Params
            The method's parameters.
        n_features : int
            Features per pixel (some estimators derive defaults from it).
        seed : int
            Random state.

        Returns
        -------
        scikit-learn classifier
        """
        raise NotImplementedError(f"{cls.__name__} does not define build_estimator")

    # ------------------------------------------------------------------ training
    def fit(self, images: Image | Sequence[Image], labels: Any, rois: Any = None, *,
            options: TrainParams | None = None, class_names: dict[int, str] | None = None) -> PixelClassifier:
        """Train on images and their (dense or scribble) label maps.

        Parameters
        ----------
        images : Image or sequence of Image
            2D/3D images ``([C,] *spatial)`` (all with the same channel count).
        labels : Image, ndarray or sequence of them
            Integer label maps ``spatial`` on the images' grids (see
            [`medseg.ml.sampling`][] for the scribble convention).
        rois : Image, ndarray or sequence, optional
            Masks ``spatial`` (>0 inside) limiting the training pixels.
        options : TrainParams, optional
            Sampling/balancing options (default: ``self.options``).
        class_names : dict, optional
            Names of the label values, stored in the model.

        Returns
        -------
        PixelClassifier
            ``self``, fitted.
        """
        imgs, labs, rs = _as_list(images), _as_list(labels), _as_list(rois)
        if not imgs:
            raise InputError("no training images given")
        if len(labs) != len(imgs) or (rs and len(rs) != len(imgs)):
            raise InputError(f"got {len(imgs)} images, {len(labs)} label maps and {len(rs)} ROIs; give one each")
        triples = list(zip(imgs, labs, rs or [None] * len(imgs)))
        self.roi_outside_ = self._roi_policy(labs, rs or [None] * len(imgs), options)
        return self._fit_stages(lambda: iter(triples), len(imgs), options=options, class_names=class_names)

    def _roi_policy(self, labels: Sequence[Any], rois: Sequence[Any], options: TrainParams | None) -> str | None:
        """What the training ROIs mean (see [`medseg.roi`][]); sparse scribbles leave the
        outside unknown (an unlabelled pixel is not a background pixel)."""
        policy = outside_policy(labels, rois)
        opts = options if options is not None else self.options
        if policy == BACKGROUND and opts.ignore_label is not None:
            policy = UNKNOWN
        if policy == BACKGROUND:
            log.info("ROI: every label outside it is background; %.0f %% of the training pixels are drawn "
                     "outside it, so predictions are clean without an ROI", 100 * OUTSIDE_SHARE)
        elif policy == UNKNOWN:
            log.warning("ROI: the labels outside it are not all background (or are scribbles), so training "
                        "stays inside it and the model needs an ROI at prediction (medseg predict --roi)")
        return policy

    def train(self, dataset: Any, out_dir: str | Path, options: TrainParams | None = None) -> PixelClassifier:
        """Train on a dataset and write the model folder ``out_dir`` atomically.

        Parameters
        ----------
        dataset : medseg.io.Dataset
            Labels required; ROIs are used when present.
        out_dir : str or Path
            The model folder to write.
        options : TrainParams, optional
            Sampling/balancing options (default: ``self.options``).

        Returns
        -------
        PixelClassifier
            ``self``, fitted.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a folder; choose another --out")
        cases = [c for c in dataset.cases]
        if not cases:
            raise InputError(f"{dataset.root}: the dataset has no cases")

        def rois() -> Iterator[tuple[Any, Any]]:
            for case in cases:
                lab, roi = dataset.load_label(case), dataset.load_roi(case)
                yield (None if lab is None else lab.array), (None if roi is None else roi.array)

        if dataset.has_roi:  # one light pass over labels and ROIs: what the ROIs mean
            labs, rs = zip(*rois())
            self.roi_outside_ = self._roi_policy([a for a in labs if a is not None],
                                                 [r for a, r in zip(labs, rs) if a is not None], options)

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

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write the model folder (``model.skops`` + ``model.json``, auto-context stages in
        ``context/``) atomically.

        Parameters
        ----------
        directory : str or Path
            The folder (replaced only when writing succeeds).

        Returns
        -------
        Path
            ``directory``.
        """
        self._check_fitted()
        return write_model_folder(directory, self.name, [(m.estimator_, m._describe()) for m in self._stages()])

    @classmethod
    def load(cls, directory: str | Path, params: Any = None) -> PixelClassifier:
        """Load a model folder written by `save` (refuses tampered/unsafe files).

        Parameters
        ----------
        directory : str or Path
            The model folder.
        params : dict or Params, optional
            Prediction options: only ``n_jobs`` (CPU cores) may differ from the defaults; the
            other parameters are fixed by training and are refused.

        Returns
        -------
        PixelClassifier
            The fitted model, with its auto-context stages.
        """
        n_jobs = None
        if params not in (None, {}):
            given = to_dict(params) if dataclasses.is_dataclass(params) else dict(params)
            defaults = to_dict(cls.Params())
            changed = {k: v for k, v in given.items() if defaults.get(k, object()) != v}
            if set(changed) - {"n_jobs"}:
                refuse_params(cls, changed)
            n_jobs = changed.get("n_jobs")
        model = None
        for stage in reversed(read_model_folder(directory, cls.name)):  # the first stage first
            outer = cls._restore(stage)
            outer.context_ = model
            if (model is None) != (int(outer.params.autocontext) == 0):
                raise ModelError(f"{stage.directory}: model.json says autocontext={outer.params.autocontext} but "
                                 f"the folder {'has no' if model is None else 'has a'} previous stage; the model "
                                 "is incomplete")
            if n_jobs is not None:  # cores for prediction: the one runtime option of a trained forest
                outer.params = dataclasses.replace(outer.params, n_jobs=int(n_jobs))
            model = outer
        return model

    def _describe(self) -> dict[str, Any]:
        """This stage's ``model.json`` description (without the estimator file's entries)."""
        return {
            "params": to_dict(self.params),
            "train_options": to_dict(self.options),
            "feature_config": self.feature_config_.to_dict(),
            "feature_names": list(self.feature_names_),
            "classes": [int(c) for c in self.classes_],
            "class_names": {str(k): v for k, v in self.class_names_.items()},
            "class_weights": [float(w) for w in self.class_weights_],
            "threshold": self.threshold_,
            "reject_below": self.reject_below_,
            "n_channels": int(self.n_channels_),
            "ndim": int(self.ndim_),
            "training": self.train_info_,
            "roi": roi_record(self.roi_outside_),
        }

    @classmethod
    def _restore(cls, stage: StoredStage) -> PixelClassifier:
        """One fitted stage from its estimator and description (no ``context_`` yet)."""
        info = stage.info
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
            rec = info.get("roi")
            model.roi_outside_ = rec.get("outside") if isinstance(rec, dict) else None
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ModelError(f"{stage.directory}/model.json: incomplete or invalid model description ({exc})") from None
        n_classes = len(getattr(stage.estimator, "classes_", []))
        if n_classes != len(model.classes_) or len(model.class_weights_) != n_classes:
            raise ModelError(f"{stage.directory}: model.json lists {len(model.classes_)} classes but the estimator "
                             f"has {n_classes}")
        model.estimator_ = stage.estimator
        return model
