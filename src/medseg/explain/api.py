"""Explain a trained model folder on one image, and write what was found.

`explain_model` loads the folder ([`medseg.methods.base.load_model`][]) and
dispatches on its family: networks (``unet``) get a saliency map by Grad-CAM, occlusion or
integrated gradients ([`medseg.explain.network`][]); pixel classifiers get per-family
contribution maps (tree models) and permutation importance ([`medseg.explain.forest`][]).
`write_explanation` writes the folder ``medseg explain`` makes:

* ``saliency<suffix>`` — float32 in [0, 1] on the input's grid and geometry, in the input's
  format ([`medseg.run.image_output_suffix`][]: 8-bit rasters become float TIFF, DICOM
  becomes NIfTI). For pixel classifiers the sum of the absolute family contributions.
* ``overlay.png`` — the figure ([`medseg.explain.figure.overlay_png`][]).
* ``explanation.json`` — model, label, method, parameters, notes; for pixel classifiers
  the bias and the importance table.
* pixel classifiers: ``contributions_<family><suffix>`` (one file per family, float32,
  signed, in probability units: bias + the sum of all family maps = the raw probability)
  and ``importance.csv`` (``family, importance, std, n_features, score``).

Examples
--------
>>> from medseg.testing import disc_phantom
>>> from medseg.ml import RandomForest
>>> import tempfile
>>> img, truth = disc_phantom((40, 40), seed=0)
>>> with tempfile.TemporaryDirectory() as d:
...     _ = RandomForest(n_estimators=5, autocontext=0, sigmas=(1.0,), features=("intensity", "gaussian")
...                      ).fit(img, truth).save(d + "/rf")
...     ex = explain_model(d + "/rf", img)
>>> ex.kind, ex.label, sorted(ex.contributions)
('pixel-classifier', 1, ['gaussian', 'intensity'])
"""
from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ConfigError, InputError
from medseg.explain.figure import overlay_png
from medseg.explain.forest import explain_pixel_classifier, family_table
from medseg.image import Image
from medseg.io import write_image
from medseg.io.atomic import atomic_dir, atomic_write_bytes, refuse_existing
from medseg.methods.base import load_model, model_method
from medseg.run import image_output_suffix

log = logging.getLogger(__name__)

__all__ = ["Explanation", "METHOD_TITLES", "explain_model", "model_classes", "output_names", "write_explanation"]

METHOD_TITLES = {"gradcam": "Grad-CAM", "occlusion": "occlusion", "integrated-gradients": "integrated gradients",
                 "contributions": "tree contributions"}
"""How each method is called in figures."""

#: network saliency methods ([`medseg.explain.network.NETWORK_METHODS`][], kept here so that
#: the CLI can list them without importing torch)
_NET_METHODS = ("gradcam", "occlusion", "integrated-gradients")


@dataclass
class Explanation:
    """The explanation of one model on one image.

    Attributes
    ----------
    kind : str
        ``"network"`` or ``"pixel-classifier"``.
    model : str
        The model folder.
    model_method : str
        The method that trained it (``unet``, ``random-forest``, ...).
    label, label_name : int, str
        The explained class.
    method : str
        ``gradcam``, ``occlusion``, ``integrated-gradients`` or ``contributions``.
    image : Image
        The input.
    saliency : ndarray of float32
        In [0, 1], shape ``image.shape``.
    labels : ndarray
        The model's label map of the image.
    contributions : dict or None
        Pixel classifiers: ``{family: float32 map}``.
    importance : list of dict
        Pixel classifiers: rows of [`medseg.explain.forest.family_table`][].
    notes : list of str
    details : dict
    """

    kind: str
    model: str
    model_method: str
    label: int
    label_name: str
    method: str
    image: Image
    saliency: np.ndarray
    labels: np.ndarray
    contributions: dict[str, np.ndarray] | None = None
    importance: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def figure(self, *, title: str | None = None, top: int = 2) -> bytes:
        """The overlay figure (PNG bytes): image with the predicted structure, the saliency,
        and for pixel classifiers the ``top`` most important families' contributions."""
        what = f"class {self.label}" + (f" ({self.label_name})" if self.label_name != str(self.label) else "")
        title = title or f"{METHOD_TITLES.get(self.method, self.method)} of {what} — {self.model_method}"
        aspect = 1.0
        if self.image.ndim == 2:
            aspect = float(self.image.spacing[0]) / float(self.image.spacing[1])
        structure = (np.asarray(self.labels) == self.label).astype(np.uint8)
        maps: list[tuple[str, np.ndarray]] = [("saliency" if self.kind == "network" else "|contributions|, all "
                                                "families", self.saliency)]
        if self.contributions:
            png_sal = overlay_png(self.image.array, structure, maps, title=title, aspect=aspect)
            ranked = [r["family"] for r in self.importance if r["family"] in self.contributions][:top]
            fam = [(f"{f}: contribution to p", self.contributions[f]) for f in ranked]
            if not fam:
                return png_sal
            png_fam = overlay_png(self.image.array, structure, fam, signed=True, aspect=aspect,
                                  title="signed contributions of the most important families (red: for the class)")
            return _stack_png([png_sal, png_fam])
        return overlay_png(self.image.array, structure, maps, title=title, aspect=aspect)

    def to_json(self) -> dict[str, Any]:
        """What ``explanation.json`` holds."""
        doc: dict[str, Any] = {"model": self.model, "model_method": self.model_method, "kind": self.kind,
                               "label": self.label, "label_name": self.label_name, "method": self.method,
                               "image_shape": list(self.image.shape), "notes": list(self.notes),
                               "details": self.details}
        if self.kind == "pixel-classifier":
            doc["families"] = sorted(self.contributions) if self.contributions else []
            doc["importance"] = self.importance
        return doc


def _stack_png(pngs: list[bytes]) -> bytes:
    """PNGs stacked vertically (left-aligned, white margin) into one PNG."""
    from PIL import Image as PILImage  # deferred: Pillow only for figures

    ims = [PILImage.open(io.BytesIO(p)).convert("RGB") for p in pngs]
    out = PILImage.new("RGB", (max(i.width for i in ims), sum(i.height for i in ims)), "white")
    y = 0
    for im in ims:
        out.paste(im, (0, y))
        y += im.height
    buf = io.BytesIO()
    out.save(buf, format="PNG")
    return buf.getvalue()


def model_classes(seg: Any) -> dict[int, str]:
    """The classes a loaded model can be asked about, ``{value: name}`` (background left out)."""
    if getattr(seg, "family", "") == "dl":
        plan = seg.plan
        names = {int(k): str(v) for k, v in (plan.class_names or {}).items()}
        return {k: names.get(k, str(k)) for k in range(1, plan.n_classes)}
    classes = [int(c) for c in np.asarray(seg.classes_).tolist()]
    names = {int(k): str(v) for k, v in (getattr(seg, "class_names_", None) or {}).items()}
    return {c: names.get(c, str(c)) for c in classes if c != 0}


def _check_label(label: int | None, classes: dict[int, str]) -> int:
    listed = ", ".join(f"{k}" + (f" ({v})" if v != str(k) else "") for k, v in classes.items())
    if label is None:
        if not classes:
            raise InputError("the model has no foreground class to explain")
        return min(classes)
    if int(label) not in classes:
        raise InputError(f"label {label} is not a class of this model; its classes: {listed}")
    return int(label)


def explain_model(model: str | Path | Any, image: Image, *, label: int | None = None, method: str | None = None,
                  labels: Image | np.ndarray | None = None, steps: int = 16, layer: str = "decoder",
                  patch: int | None = None, device: str = "auto", max_pixels: int = 65536, repeats: int = 3,
                  seed: int = 0) -> Explanation:
    """Explain ``model``'s output for class ``label`` on ``image``.

    Parameters
    ----------
    model : str, Path or loaded Segmenter
        A model folder written by ``medseg train`` (or the segmenter ``load_model`` gave).
    image : Image
    label : int, optional
        The class to explain (default: the lowest foreground class).
    method : str, optional
        Networks: ``gradcam`` (default), ``occlusion`` or ``integrated-gradients``. Pixel
        classifiers take none (or ``contributions``).
    labels : Image or ndarray, optional
        The image's label map, for the permutation importance of pixel classifiers.
    steps, layer, patch, device
        Network options ([`NetworkExplainer`][medseg.explain.network.NetworkExplainer]; ``device``
        ``auto``, ``cpu`` or ``cuda``).
    max_pixels, repeats, seed
        Pixel-classifier options ([`explain_pixel_classifier`][medseg.explain.forest.explain_pixel_classifier]).

    Returns
    -------
    Explanation

    Raises
    ------
    ConfigError
        A method the model cannot use.
    InputError
        A label the model does not have, or an image it cannot take.
    """
    name = str(model) if isinstance(model, (str, Path)) else getattr(model, "name", "model")
    if isinstance(model, (str, Path)):
        family = model_method(model).family
        params = {"tta": False, "backend": "torch", "compile": "off", "device": device} if family == "dl" else None
        seg = load_model(model, params)
    else:
        seg = model
    classes = model_classes(seg)
    k = _check_label(label, classes)
    if seg.family == "dl":
        method = method or "gradcam"
        if method not in _NET_METHODS:
            raise ConfigError(f"unknown explanation method '{method}' for a network; choose {', '.join(_NET_METHODS)}")
        from medseg.explain.network import NetworkExplainer  # deferred: imports torch

        if labels is not None:
            log.info("--labels is used by pixel classifiers only; a network's saliency does not need it")
        ex = NetworkExplainer(seg.predictor(), layer=layer, steps=steps, patch=patch)
        s = ex.explain(image, k, method)
        return Explanation("network", name, seg.name, k, classes[k], method, image, s.saliency, s.labels,
                           notes=s.notes, details=s.details)
    if seg.family != "ml":
        raise ConfigError(f"{name}: explanations cover unet and pixel-classifier models, not '{seg.name}'")
    if method not in (None, "contributions"):
        raise ConfigError(f"--method {method} applies to networks; a {seg.name} model is explained by its per-feature "
                          "contributions and the permutation importance of its feature families (leave --method out)")
    fe = explain_pixel_classifier(seg, image, k, reference=labels, max_pixels=max_pixels, repeats=repeats, seed=seed)
    details = dict(fe.details, bias=fe.bias, baseline_dice=fe.baseline, reference=fe.reference)
    return Explanation("pixel-classifier", name, seg.name, k, classes[k], "contributions", image, fe.saliency,
                       fe.labels, contributions=fe.contributions, importance=[dict(r) for r in family_table(fe)],
                       notes=fe.notes, details=details)


def output_names(expl_kind: str, families: list[str] | None, suffix: str) -> list[str]:
    """The file names `write_explanation` writes into its folder.

    Examples
    --------
    >>> output_names("network", None, ".nii.gz")
    ['saliency.nii.gz', 'overlay.png', 'explanation.json']
    """
    names = [f"saliency{suffix}", "overlay.png", "explanation.json"]
    if expl_kind == "pixel-classifier":
        names += [f"contributions_{f}{suffix}" for f in (families or [])] + ["importance.csv"]
    return names


def write_explanation(expl: Explanation, out: str | Path, input_path: str | Path, *, force: bool = False
                      ) -> list[Path]:
    """Write the explanation folder ``out`` (see the module docstring) in one step.

    Parameters
    ----------
    expl : Explanation
    out : str or Path
        The folder to write (refused when it exists and is not empty, unless ``force``).
    input_path : str or Path
        The image's path: chooses the format of the maps.
    force : bool
        Replace an existing folder.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: OUT must be a folder, but a file of that name exists")
    refuse_existing([out], force=force)
    suffix = image_output_suffix(Path(input_path))
    img = expl.image
    meta = {k: v for k, v in dict(img.meta).items() if k != "rgb"}
    names = output_names(expl.kind, sorted(expl.contributions) if expl.contributions else [], suffix)
    with atomic_dir(out) as tmp:
        write_image(img.with_array(expl.saliency.astype(np.float32), meta=meta), tmp / names[0])
        atomic_write_bytes(tmp / "overlay.png", expl.figure())
        (tmp / "explanation.json").write_text(json.dumps(_json_safe(expl.to_json()), indent=2) + "\n")
        if expl.kind == "pixel-classifier":
            for f, m in sorted((expl.contributions or {}).items()):
                write_image(img.with_array(m.astype(np.float32), meta=meta), tmp / f"contributions_{f}{suffix}")
            buf = io.StringIO()
            w = csv.DictWriter(buf, ["family", "importance", "std", "n_features", "score"], lineterminator="\n")
            w.writeheader()
            for r in expl.importance:
                w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
            (tmp / "importance.csv").write_text(buf.getvalue())
    return [out / n for n in names]


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x
