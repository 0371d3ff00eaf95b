"""The deep-learning method ``unet``: a self-configuring U-Net (2D and 3D).

``medseg train DATASET --method unet --out MODEL_DIR [--epochs N | --time-budget MIN]
[--fold K|all] [--resume]`` plans the network from the data (``plan.json``), trains it
with exact resume and writes a model folder; ``medseg predict MODEL_DIR IN OUT`` and
``medseg segment IN OUT --model MODEL_DIR`` apply it (sliding window, mirroring TTA,
fold ensemble, post-processing chosen on validation).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ModelError
from medseg.image import Image
from medseg.contract import Segmenter, check_input, label_like, read_model_info
from medseg.methods.base import register_method
from medseg.train.config import TrainConfig

log = logging.getLogger(__name__)

__all__ = ["UNetMethod", "UNetParams"]


@dataclass(frozen=True)
class UNetParams:
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


@register_method
class UNetMethod(Segmenter):
    """Self-configuring U-Net (MONAI networks), trained with ``medseg train --method unet``.

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
    def train(self, dataset, out_dir, options: TrainConfig | None = None, **kw: Any) -> UNetMethod:
        """Train on a :class:`~medseg.io.Dataset` into the model folder ``out_dir``."""
        from medseg.train.engine import train_model

        import dataclasses

        options = options or TrainConfig()
        if options.device == "auto" and self.params.device != "auto":  # `--device` is parsed as a Params flag
            options = dataclasses.replace(options, device=self.params.device)
        self._info = train_model(dataset, out_dir, options, **kw)
        self._dir = Path(out_dir)
        self._predictor = None
        return self

    def fit(self, images, labels, rois=None, *, epochs: int = 10, iters_per_epoch: int = 100,
            **options: Any) -> UNetMethod:
        """Train on in-memory Images (written to a temporary dataset folder, no validation).

        ``options`` are further :class:`~medseg.train.config.TrainConfig` fields.
        """
        import tempfile

        from medseg.config import from_dict
        from medseg.io import load_dataset
        from medseg.io.writing import write_dataset

        if len(images) != len(labels) or not images:
            from medseg.errors import InputError

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

    def save(self, directory) -> Path:
        if self._dir is None:
            raise ModelError("the model is not trained; call train() or fit() first")
        import shutil

        d = Path(directory)
        if d.resolve() != self._dir.resolve():
            from medseg.io.atomic import atomic_dir

            with atomic_dir(d) as tmp:
                shutil.copytree(self._dir, tmp, dirs_exist_ok=True)
        return d

    @classmethod
    def load(cls, directory, params: UNetParams | None = None) -> UNetMethod:
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
    def plan(self):
        from medseg.train.plan import plan_from_dict

        if self._info is None:
            raise ModelError("the model is not trained; train it or load a model folder")
        return plan_from_dict(self._info["plan"])

    def predictor(self):
        if self._predictor is None:
            from medseg.infer.loading import load_fold_net
            from medseg.infer.predictor import Predictor, resolve_device
            from medseg.train.engine import parse_folds

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
                from medseg.errors import ConfigError

                raise ConfigError(f"--checkpoint must be 'last' or 'best', got '{self.params.checkpoint}'")
            ck = f"checkpoint_{self.params.checkpoint}.pt"
            nets = [load_fold_net(self._dir / f"fold_{k}", plan, device, ck) for k in folds]
            window = self.params.window
            if window == "auto":
                window = str((self._info or {}).get("inference_window", "patch"))
            self._predictor = Predictor(nets, plan, tta=self.params.tta, overlap=self.params.overlap, device=device,
                                        backend=self.params.backend, window=window, compile=self.params.compile)
        return self._predictor

    def predict_proba(self, image: Image) -> Image:
        img = check_input(image, type(self))
        return self.predictor().predict_proba(img)

    def __call__(self, image: Image) -> Image:
        from medseg.infer.predictor import postprocess

        image = check_input(image, type(self))  # a NumPy array becomes an Image (unit spacing)
        prob = self.predict_proba(image)
        lab = np.argmax(prob.array, axis=0).astype(np.uint8)
        if self.params.postprocess:
            lab = postprocess(lab, (self._info or {}).get("postprocessing"))
        return label_like(image, lab, method=self.name)

    def describe_model(self) -> str:
        return json.dumps(self._info.get("plan") if self._info else {}, indent=2)
