"""The deep-learning method ``unet``: a self-configuring U-Net (2D and 3D).

``medseg train DATASET --method unet --out MODEL_DIR [--epochs N | --time-budget MIN]
[--fold K|all] [--resume]`` plans the network from the data (``plan.json``), trains it
with exact resume and writes a model folder; ``medseg predict MODEL_DIR IN OUT`` and
``medseg segment IN OUT --model MODEL_DIR`` apply it (sliding window, mirroring TTA,
fold ensemble, post-processing chosen on validation).

This adapter wires training ([`medseg.train`][]) to inference ([`medseg.infer`][]),
which never import each other: `train_unet` hands training the validator inference
provides.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.config import from_dict
from medseg.contract import Segmenter, check_input, label_like, read_model_info
from medseg.dl.folds import parse_folds
from medseg.dl.plan import Plan, plan_from_dict
from medseg.errors import ConfigError, InputError, ModelError
from medseg.image import Image
from medseg.io import Dataset, load_dataset
from medseg.io.atomic import atomic_dir
from medseg.io.writing import write_dataset
from medseg.methods.base import register_method
from medseg.postprocess import apply_rules
from medseg.train.config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["UNetMethod", "UNetParams", "train_unet"]


def train_unet(dataset: Dataset, out_dir: str | Path, options: TrainConfig | None = None, *,
               step_callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train a ``unet`` model folder: [`medseg.train.engine.train_model`][] validating with
    [`medseg.infer.validation.PredictorValidator`][].

    Parameters
    ----------
    dataset : Dataset
        Labelled training cases.
    out_dir : str or Path
        The model folder to write.
    options : TrainConfig, optional
    step_callback : callable, optional
        ``step_callback(step)`` after each optimisation step; what it raises propagates.

    Returns
    -------
    dict
        The model description written to ``model.json``.

    Examples
    --------
    >>> from medseg.io import load_dataset                                    # doctest: +SKIP
    >>> info = train_unet(load_dataset("data/"), "model", TrainConfig(epochs=5))  # doctest: +SKIP
    >>> info["inference_window"]                                              # doctest: +SKIP
    'patch'
    """
    from medseg.infer.validation import PredictorValidator  # deferred: imports torch
    from medseg.train.engine import train_model  # deferred: imports torch

    return train_model(dataset, out_dir, options, validator=PredictorValidator(), step_callback=step_callback)


@dataclass(frozen=True)
class UNetParams:
    """Prediction options of a ``unet`` model (``medseg predict`` / ``segment --model`` flags).

    Parameters
    ----------
    tta, overlap, device, use_folds, postprocess, backend, window, checkpoint, compile, temperature
        See each field's ``help``.
    """

    tta: bool = field(default=True, metadata={"help": "mirroring test-time augmentation"})
    overlap: float = field(default=0.5, metadata={"help": "sliding-window overlap fraction"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda (inference)"})
    use_folds: str = field(default="all", metadata={"help": "folds to ensemble: 'all' or e.g. 0,2"})
    postprocess: bool = field(default=True, metadata={"help": "apply the post-processing chosen on validation"})
    backend: str = field(default="auto", metadata={
        "help": "inference engine: 'auto' (ONNX Runtime on the CPU with one thread when installed, else torch), "
                "'torch' or 'onnx'"})
    window: str = field(default="auto", metadata={
        "help": "inference window: 'auto' (the one training chose on validation, see model.json "
                "inference_window), 'patch' (training patch size, nnU-Net's way) or 'image' (whole image "
                "up to a memory bound: fewer voxels, faster)"})
    checkpoint: str = field(default="last", metadata={
        "help": "weights to use: 'last' (end of training, as nnU-Net) or 'best' (best validation Dice)"})
    compile: str = field(default="auto", metadata={
        "help": "torch.compile the network (torch backend): 'auto' (on the CPU, once a window shape has "
                "taken 60 s of uncompiled passes: long jobs run 1.3-1.5x faster per window, short ones never "
                "wait 10-20 s for the compiler), 'on' (from the first window) or 'off' (bit-reproducible)"})
    temperature: bool = field(default=True, metadata={
        "help": "divide the logits by the temperature fitted on the validation cases (model.json temperature; "
                "calibrates the probabilities, the labels stay the same); --no-temperature uses the raw softmax"})


@register_method
class UNetMethod(Segmenter):
    """Self-configuring U-Net (MONAI networks), trained with ``medseg train --method unet``.

    Parameters
    ----------
    params : UNetParams or dict, optional
        Prediction options.

    Examples
    --------
    >>> from medseg.methods.base import load_model      # doctest: +SKIP
    >>> seg = load_model("model_dir")                    # doctest: +SKIP
    >>> labels = seg(image)                              # doctest: +SKIP
    """

    name = "unet"
    family = "dl"
    dims = (2, 3)
    summary = "self-configuring U-Net (2D/3D) trained on your data; sliding window + TTA inference"
    Params = UNetParams
    TrainParams = TrainConfig
    trainable = True

    def __init__(self, params: Any = None, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._predictor = None
        self._info: dict[str, Any] | None = None
        self._dir: Path | None = None

    # ------------------------------------------------------------------ training
    def train(self, dataset: Dataset, out_dir: str | Path, options: TrainConfig | None = None, *,
              step_callback: Callable[[int], None] | None = None) -> UNetMethod:
        """Train on a [`Dataset`][medseg.io.Dataset] into the model folder ``out_dir`` (`train_unet`).

        Parameters
        ----------
        dataset : Dataset
        out_dir : str or Path
        options : TrainConfig, optional
            Its ``device`` defaults to this method's ``device`` parameter.
        step_callback : callable, optional

        Returns
        -------
        UNetMethod
            ``self``, trained.
        """
        options = options or TrainConfig()
        if options.device == "auto" and self.params.device != "auto":  # `--device` is parsed as a Params flag
            options = dataclasses.replace(options, device=self.params.device)
        self._info = train_unet(dataset, out_dir, options, step_callback=step_callback)
        self._dir = Path(out_dir)
        self._predictor = None
        return self

    def fit(self, images, labels, rois=None, *, epochs: int = 10, iters_per_epoch: int = 100,
            **options: Any) -> UNetMethod:
        """Train on in-memory Images (written to a temporary dataset folder, no validation).

        Parameters
        ----------
        images : sequence of Image
        labels : sequence of Image or ndarray
            Label maps on the images' grids.
        rois : sequence of Image or ndarray or None, optional
        epochs, iters_per_epoch : int
        **options
            Further [`TrainConfig`][medseg.train.config.TrainConfig] fields.

        Returns
        -------
        UNetMethod
            ``self``, trained.
        """
        if len(images) != len(labels) or not images:
            raise InputError(f"fit needs matching, non-empty lists: {len(images)} images, {len(labels)} label maps")
        self._tmp = tempfile.TemporaryDirectory(prefix="medseg-unet-")
        root = Path(self._tmp.name)

        def on_grid(im: Image, other: Any) -> Image | None:
            if other is None:
                return None
            a = np.asarray(other.array if isinstance(other, Image) else other)
            return label_like(check_input(im), a)  # the pair shares the image's geometry

        cases = [(f"case_{i:03d}", im, on_grid(im, lab), None if rois is None else on_grid(im, rois[i]))
                 for i, (im, lab) in enumerate(zip(images, labels))]
        write_dataset(cases, root / "data", layout="folders", suffix=".nii.gz")
        cfg = from_dict(TrainConfig, {"folds": 1, "epochs": epochs, "iters_per_epoch": iters_per_epoch,
                                      "progress": False, **options}, what="unet fit options")
        return self.train(load_dataset(root / "data"), root / "model", cfg)

    def save(self, directory: str | Path) -> Path:
        """Copy the trained model folder to ``directory`` (atomically); returns it."""
        if self._dir is None:
            raise ModelError("the model is not trained; call train() or fit() first")
        d = Path(directory)
        if d.resolve() != self._dir.resolve():
            with atomic_dir(d) as tmp:
                shutil.copytree(self._dir, tmp, dirs_exist_ok=True)
        return d

    @classmethod
    def load(cls, directory: str | Path, params: UNetParams | None = None) -> UNetMethod:
        """A ``unet`` model folder with prediction options ``params``.

        Raises
        ------
        ModelError
            Not a model folder, or its ``model.json`` has no plan.
        """
        d = Path(directory)
        info = read_model_info(d)
        if "plan" not in info:
            raise ModelError(f"{d}/model.json has no plan; the model folder is incomplete or not a unet model")
        self = cls(params)
        self._info = info
        self._dir = d
        return self

    # ------------------------------------------------------------------ inference
    @property
    def plan(self) -> Plan:
        """The model's [`Plan`][medseg.dl.plan.Plan]."""
        if self._info is None:
            raise ModelError("the model is not trained; train it or load a model folder")
        return plan_from_dict(self._info["plan"])

    def predictor(self):
        """The [`Predictor`][medseg.infer.predictor.Predictor] of the selected folds (built once)."""
        if self._predictor is None:
            from medseg.dl.device import resolve_device  # deferred: imports torch
            from medseg.dl.network import load_fold_net  # deferred: imports torch
            from medseg.infer.predictor import Predictor  # deferred: imports torch

            plan = self.plan
            device = resolve_device(self.params.device)
            folds = list(self._info.get("folds", [0]))
            if self.params.use_folds != "all":
                want = parse_folds(self.params.use_folds, int(self._info.get("n_folds", max(folds) + 1)),
                                   flag="--use-folds")
                missing = [k for k in want if k not in folds]
                if missing:
                    raise ModelError(f"fold(s) {missing} were not trained in {self._dir}; trained: {folds}")
                folds = want
            if self.params.checkpoint not in ("last", "best"):
                raise ConfigError(f"--checkpoint must be 'last' or 'best', got '{self.params.checkpoint}'")
            ck = f"checkpoint_{self.params.checkpoint}.pt"
            nets = [load_fold_net(self._dir / f"fold_{k}", plan, device, ck) for k in folds]
            window = self.params.window
            if window == "auto":
                window = str((self._info or {}).get("inference_window", "patch"))
            temperature = float((self._info or {}).get("temperature", 1.0)) if self.params.temperature else 1.0
            self._predictor = Predictor(nets, plan, tta=self.params.tta, overlap=self.params.overlap, device=device,
                                        backend=self.params.backend, window=window, compile=self.params.compile,
                                        temperature=temperature)
        return self._predictor

    def predict_proba(self, image: Image) -> Image:
        """Class probabilities ``(K, *image.shape)`` on ``image``'s grid."""
        img = check_input(image, type(self))
        return self.predictor().predict_proba(img)

    def __call__(self, image: Image) -> Image:
        """The label map of ``image`` (post-processed with the rules chosen on validation)."""
        image = check_input(image, type(self))  # a NumPy array becomes an Image (unit spacing)
        rules = (self._info or {}).get("postprocessing") if self.params.postprocess else None
        # the predictor's label path: a large 3D volume runs in slabs, without whole-volume probabilities
        return label_like(image, self.predictor().predict(image, rules), method=self.name)

    def _labels(self, image: Image, prob: Image) -> Image:
        from medseg.infer.predictor import argmax_labels  # deferred: imports torch

        lab = argmax_labels(prob.array)
        if self.params.postprocess:
            lab = apply_rules(lab, (self._info or {}).get("postprocessing"))
        return label_like(image, lab, method=self.name)

    def predict_uncertainty(self, image: Image) -> dict[str, Any]:
        """Probabilities, label map and per-voxel uncertainty of ``image`` in one ensemble pass.

        See [`medseg.infer.predictor.Predictor.predict_uncertainty`][] for the maps
        (predictive entropy of the fold and mirroring ensemble, mutual information, spread
        between folds and between mirrors).

        Parameters
        ----------
        image : Image

        Returns
        -------
        dict
            ``probabilities`` (Image ``(K, *shape)``), ``labels`` (the label map ``__call__``
            gives) and ``maps`` (``{name: float32 ndarray of image.shape}``).
        """
        image = check_input(image, type(self))
        prob, maps = self.predictor().predict_uncertainty(image)
        return {"probabilities": prob, "labels": self._labels(image, prob), "maps": maps}

    def describe_model(self) -> str:
        """The model's plan as indented JSON."""
        return json.dumps(self._info.get("plan") if self._info else {}, indent=2)
