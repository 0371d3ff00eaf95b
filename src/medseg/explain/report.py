"""Explanations of an evaluation's worst cases, as HTML for its report (``medseg evaluate --explain MODEL``).

For each of the cases the report draws ([`medseg.metrics.aggregate.worst_cases`][], the
same ranking), the model is explained on the case's image for the label with the lowest
Dice there (among the model's classes), with the default method of its kind, and the
figure ([`figure`][medseg.explain.api.Explanation.figure]) is returned as an HTML block that
the report puts under the case. Cases without an image (give ``--images`` or a dataset
folder as ground truth) get a one-line note instead.

Examples
--------
>>> explain_cases.__name__
'explain_cases'
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.explain.api import METHOD_TITLES, explain_model, model_classes
from medseg.image import Image
from medseg.io import read_image
from medseg.methods.base import load_model, model_method
from medseg.metrics.aggregate import worst_cases
from medseg.viz import html as H

log = logging.getLogger(__name__)

__all__ = ["explain_cases"]


def _image(x: Any) -> Image | None:
    if x is None:
        return None
    if isinstance(x, Image):
        return x
    if isinstance(x, (str, Path)):
        return read_image(x)
    return Image(np.asarray(x))


def explain_cases(table: Any, model: str | Path, *, n_worst: int = 5, method: str | None = None,
                  device: str = "auto") -> dict[str, str]:
    """HTML blocks explaining ``model`` on the worst cases of an evaluation.

    Parameters
    ----------
    table : MetricsTable
        The evaluation (its ``rows`` rank the cases, ``sources`` give the images).
    model : str or Path
        The model folder that made the predictions.
    n_worst : int
        How many worst cases (the report's number).
    method : str, optional
        Network saliency method (default Grad-CAM); pixel classifiers take none.
    device : str
        For networks.

    Returns
    -------
    dict
        ``{case: html}`` for each worst case.
    """
    dl = model_method(model).family == "dl"  # explanation-time options, as explain_model sets them
    seg = load_model(model, {"tta": False, "backend": "torch", "compile": "off", "device": device} if dl else None)
    classes = model_classes(seg)
    out: dict[str, str] = {}
    for case, _ in worst_cases(table.rows, n_worst):
        rows = [r for r in table.rows if r["case"] == case and int(r["label"]) in classes]
        if not rows:
            out[case] = '<p class="meta">Explanation: the model has none of this case\'s labels.</p>'
            continue
        row = min(rows, key=lambda r: (r["dice"] if not math.isnan(float(r["dice"])) else 2.0))
        label = int(row["label"])
        try:
            image = _image((table.sources.get(case) or {}).get("image"))
            if image is None:
                out[case] = ('<p class="meta">Explanation: no image for this case (give --images, or a dataset '
                             "folder as ground truth).</p>")
                continue
            ex = explain_model(seg, image, label=label, method=method)
        except MedsegError as exc:
            log.warning("case %s: no explanation (%s)", case, exc)
            out[case] = f'<p class="meta">Explanation: not available ({H.esc(str(exc))}).</p>'
            continue
        what = METHOD_TITLES.get(ex.method, ex.method)
        notes = "".join(f" {H.esc(n)}." for n in ex.notes)
        extra = ""
        if ex.importance:
            extra = " Permutation importance (Dice drop): " + ", ".join(
                f"{H.esc(r['family'])} {r['importance']:+.3f}" for r in ex.importance[:4]) + "."
        out[case] = (f'<div class="explain"><p class="row-title">Why the model predicted label {label}'
                     f"{' (' + H.esc(ex.label_name) + ')' if ex.label_name != str(label) else ''} here: {what} "
                     f"of {H.esc(ex.model_method)}</p>"
                     f'<p class="meta">Saliency over the region the model predicts as label {label} (outlined), '
                     f"scaled to its maximum.{notes}{extra}</p>"
                     + H.img(ex.figure(title=f"{case}: {what}, label {label}"), f"explanation of {case}")
                     + "</div>")
    return out
