"""Pair prediction files with ground-truth files (and ROIs, images, probability maps) by case."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medseg.errors import InputError
from medseg.io.base import is_image_file, strip_suffix
from medseg.io.datasets import LABEL_DIRS, case_key, list_images, load_dataset, pair_files
from medseg.io.listing import PAIRING_RULES, short_list

__all__ = ["pair_paths"]

log = logging.getLogger(__name__)
PROB_TAG = "_prob"


def _files(path: Path, what: str) -> list[Path]:
    if not path.exists():
        raise InputError(f"{path}: the {what} does not exist")
    if path.is_file():
        if not is_image_file(path):
            raise InputError(f"{path}: the {what} is not an image file medseg can read")
        return [path]
    files = list_images(path)
    if not files:
        raise InputError(f"{path}: the {what} folder holds no image files")
    return files


def _split_prob(files: list[Path]) -> tuple[list[Path], list[Path]]:
    probs = [f for f in files if strip_suffix(f).endswith(PROB_TAG)]
    return [f for f in files if f not in probs], probs


def _match_aux(truth_files: list[Path], files: list[Path], what: str) -> dict[Path, Path]:
    """Match each ground-truth file to one file of an auxiliary group (ROI, image, probabilities).

    Extra auxiliary files are allowed (e.g. a full ``mask/`` folder when only some cases are
    evaluated); every ground-truth file must find exactly one match.
    """
    if len(truth_files) == 1 and len(files) == 1:
        return {truth_files[0]: files[0]}
    missing: list[str] = []
    for rule in PAIRING_RULES:
        keys = [case_key(t, rule) for t in truth_files]
        if len(set(keys)) != len(keys):
            continue
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(case_key(f, rule), []).append(f)
        missing = [t.name for t, k in zip(truth_files, keys) if len(groups.get(k, [])) != 1]
        if not missing:
            return {t: groups[k][0] for t, k in zip(truth_files, keys)}
    raise InputError(f"cannot find exactly one {what} file for the ground truth "
                     f"{short_list(missing or [t.name for t in truth_files])}; name them after the cases")


def pair_paths(pred: Any, truth: Any, *, roi: Any = None, probabilities: Any = None,
               images: Any = None, subset: bool = False) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Match prediction files to ground-truth files case by case.

    ``truth`` may be a file, a folder of label maps, or a dataset root (``images/`` +
    ``labels/`` [+ ``roi/``], or MSD/nnU-Net), which then also supplies ROIs, images and
    label names. ``NAME_prob.*`` files in the prediction folder (as written by ``medseg
    predict --probabilities``) are used as probability maps unless ``probabilities`` is given.

    With ``subset=True`` only the ground-truth cases that have a prediction are evaluated
    (e.g. one cross-validation fold against the full labels folder); otherwise a
    ground-truth file without a prediction is an error, like a prediction without one.

    Parameters
    ----------
    pred : str or Path
        A prediction file or folder.
    truth : str or Path
        A ground-truth file, folder or dataset root.
    roi, probabilities, images : str or Path, optional
        Files or folders of regions of interest, probability maps and images.
    subset : bool
        Evaluate only the ground-truth cases that have a prediction.

    Returns
    -------
    cases : list of dict
        ``{"case", "prediction", "truth", "roi", "image", "probabilities"}`` (paths or None).
    label_names : dict
        ``{label: name}`` from a dataset root, else empty.
    """
    pred_p, truth_p = Path(pred), Path(truth)
    label_names: dict[int, str] = {}
    ds_roi: dict[Path, Path] = {}
    ds_img: dict[Path, Path] = {}
    is_root = truth_p.is_dir() and (any((truth_p / d).is_dir() for d in LABEL_DIRS)
                                    or (truth_p / "labelsTr").is_dir() or (truth_p / "dataset.json").is_file())
    if is_root:
        ds = load_dataset(truth_p, require_labels=True)
        label_names = {int(k): str(v) for k, v in ds.label_names.items() if int(k) != 0}
        truth_files = []
        for c in ds.cases:
            if c.label is None:
                continue
            truth_files.append(c.label)
            if c.roi is not None:
                ds_roi[c.label] = c.roi
            if len(c.images) == 1:
                ds_img[c.label] = c.images[0]
        if not truth_files:
            raise InputError(f"{truth_p}: the dataset has no label files to evaluate against")
    else:
        truth_files = _files(truth_p, "ground truth")
    pred_files, auto_probs = _split_prob(_files(pred_p, "prediction"))
    if not pred_files:
        raise InputError(f"{pred_p}: only probability maps (*{PROB_TAG}) found; give the label-map predictions")
    if subset and len(truth_files) > len(pred_files):
        matched = _match_aux(pred_files, truth_files, "ground-truth")
        keep = set(matched.values())
        log.info("evaluating %d of %d ground-truth cases (--subset)", len(keep), len(truth_files))
        truth_files = [t for t in truth_files if t in keep]
    groups: dict[str, Sequence[Path]] = {"prediction": pred_files}
    aux: dict[str, dict[Path, Path]] = {}
    for name, arg in (("roi", roi), ("image", images), ("probabilities", probabilities)):
        if arg is not None:
            what = {"roi": "ROI", "image": "image", "probabilities": "probability map"}[name]
            aux[name] = _match_aux(truth_files, _files(Path(arg), what), what)
    if probabilities is None and auto_probs:
        aux["probabilities"] = _match_aux(truth_files, auto_probs, "probability map")
    if len(truth_files) == 1 and all(len(v) == 1 for v in groups.values()):
        paired = [(strip_suffix(truth_files[0]), truth_files[0], {k: v[0] for k, v in groups.items()})]
    else:
        try:
            paired = pair_files(truth_files, groups)
        except InputError as exc:
            msg = str(exc).replace("images without", "ground-truth files without").replace(
                "without an image", "without a ground-truth file")
            if len(truth_files) > len(pred_files) and not subset:
                raise InputError(f"{len(pred_files)} prediction(s) for {len(truth_files)} ground-truth cases; use "
                                 "--subset to score only the predicted cases (or predict the others): "
                                 f"{msg.removeprefix(chr(99) + 'annot pair the dataset' + chr(39) + 's files: ')}"
                                 ) from exc
            raise InputError(f"cannot pair predictions with ground truth: {msg}") from exc
    cases = []
    for cid, t, other in paired:
        cases.append({"case": cid, "truth": t, "prediction": other["prediction"],
                      "roi": aux.get("roi", ds_roi).get(t), "image": aux.get("image", ds_img).get(t),
                      "probabilities": aux.get("probabilities", {}).get(t)})
    log.debug("paired %d cases", len(cases))
    return cases, label_names
