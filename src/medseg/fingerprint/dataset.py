"""The dataset fingerprint: `fingerprint` reads every case once, summarises it and
lists its problems (see [`medseg.fingerprint`][]).

Examples
--------
>>> from medseg.io import load_dataset
>>> from medseg.testing import make_dataset
>>> fp = fingerprint(load_dataset(make_dataset("data", kind="disc", n=2, shape=(32, 32))))
>>> fp["n_cases"], fp["dims"], fp["labels"]
(2, 2, [0, 1])
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from medseg.errors import InputError, MedsegError
from medseg.fingerprint.text import fmt_values
from medseg.image import SPACING_UNKNOWN, Image, require_finite, same_grid
from medseg.io import Case, Dataset
from medseg.io.multimodal import label_onto
from medseg.progress import progress as show_progress
from medseg.roi import labelled_outside, policy_from_counts

log = logging.getLogger(__name__)

#: intensity ranges (max - min) differing by more than this factor between cases are a problem
RANGE_RATIO = 100.0

__all__ = ["fingerprint", "PERCENTILES", "MAX_LABEL_VALUES"]

PERCENTILES = (0.5, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.5)
"""The intensity percentiles a fingerprint reports per channel, of all voxels and of the
foreground (from samples pooled over the cases)."""
MAX_LABEL_VALUES = 100
"""More distinct values than this in a label map: probably not a label map."""


class _Stats:
    """Exact count/mean/std/min/max plus a bounded random sample for percentiles."""

    def __init__(self) -> None:
        self.n = 0
        self.s = 0.0
        self.s2 = 0.0
        self.lo = np.inf
        self.hi = -np.inf
        self.samples: list[np.ndarray] = []

    def add(self, values: np.ndarray, rng: np.random.Generator, k: int) -> None:
        v = values[np.isfinite(values)] if values.dtype.kind == "f" else values
        if v.size == 0:
            return
        v64 = v.astype(np.float64, copy=False)
        self.n += v64.size
        self.s += float(v64.sum())
        self.s2 += float(np.square(v64).sum())
        self.lo = min(self.lo, float(v64.min()))
        self.hi = max(self.hi, float(v64.max()))
        self.samples.append(v64 if v64.size <= k else rng.choice(v64, k, replace=False))

    def summary(self) -> dict[str, Any] | None:
        if self.n == 0:
            return None
        mean = self.s / self.n
        var = max(self.s2 / self.n - mean * mean, 0.0)
        pooled = np.concatenate(self.samples)
        pct = np.percentile(pooled, PERCENTILES)
        return {"n_voxels": int(self.n), "mean": mean, "std": float(np.sqrt(var)), "min": self.lo, "max": self.hi,
                "percentiles": {f"{p:g}": float(v) for p, v in zip(PERCENTILES, pct)}}


def _problem(case: Case | None, kind: str, message: str, file=None) -> dict[str, Any]:
    return {"case": case.case_id if case else None, "kind": kind, "message": message,
            "file": str(file) if file is not None else None}


def _range(values: list[tuple[float, ...]]) -> dict[str, list[float]] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=float)
    return {"median": np.median(a, axis=0).tolist(), "min": a.min(axis=0).tolist(), "max": a.max(axis=0).tolist()}


def _modality(ds: Dataset, img: Image) -> list[str]:
    if ds.channel_names:
        return [str(c) for c in ds.channel_names]
    if img.meta.get("rgb"):
        return ["R", "G", "B"][: img.n_channels]
    mod = img.meta.get("modality")
    return [str(mod) if mod else "unknown"] * img.n_channels


def _iterate(cases: list[Case], progress: bool) -> Iterable[Case]:
    return show_progress(cases, desc="inspect", unit="case", enabled=progress)


def fingerprint(dataset: Dataset, *, samples_per_case: int = 10_000, seed: int = 0, progress: bool = False,
                strict: bool = False, plan_cases: int = 64) -> dict[str, Any]:
    """Summarise ``dataset`` and list its problems.

    Parameters
    ----------
    dataset : Dataset
        From [`medseg.io.load_dataset`][].
    samples_per_case : int
        Voxels sampled per case and channel (overall, and again inside the labels) for the
        percentiles; means, std, min and max are exact.
    seed : int
        Seed of the sampling.
    progress : bool
        Show a progress bar on a terminal.
    strict : bool
        Raise at the first case training cannot use instead of listing it (what ``medseg
        train`` does); by default problems are listed and never raised.
    plan_cases : int
        At most this many cases, drawn with ``seed``, give the foreground samples of
        ``fg_stats`` (``samples_per_case`` per case and channel).

    Returns
    -------
    dict
        Plain JSON data. Keys include ``n_cases`` (int), ``dimensionality``, ``n_channels``,
        ``modality`` (per channel), ``shape`` and ``spacing`` (``median``/``min``/``max`` per
        spatial axis, NumPy order), ``intensity`` (per channel: ``overall`` and
        ``foreground`` with ``mean``, ``std``, ``min``, ``max``, ``percentiles``),
        ``labels`` (sorted list of values present), ``label_fractions`` (value -> voxel
        fraction), ``label_cases`` (value -> number of cases containing it),
        ``roi_coverage``, ``cases`` (one record per case) and ``problems`` (list of
        ``{case, kind, message, file}``); and what the planner reads: ``dims``,
        ``shapes`` and ``spacings`` (one list per readable case), ``declared_modality``
        (the channel names ``dataset.meta`` declares), ``fg_stats`` (per channel: p0.5,
        p99.5, mean and std of the sampled foreground intensities), ``class_counts``
        (voxels per label value), ``label_names`` and ``has_roi``.

    Raises
    ------
    MedsegError
        Only with ``strict``: an [`InputError`][medseg.errors.InputError] for no cases, a case
        without a label map, NaN/Inf voxels, mixed dimensionality or channel counts, or
        labels that are not non-negative integers; the reader's error for an unreadable
        file and a [`GeometryError`][medseg.errors.GeometryError] for a label map off the image grid.

    Examples
    --------
    >>> from medseg.io import load_dataset                         # doctest: +SKIP
    >>> fp = fingerprint(load_dataset("Hippocampus/"))              # doctest: +SKIP
    >>> fp["n_cases"], fp["labels"], fp["spacing"]["median"]        # doctest: +SKIP
    (200, [0, 1, 2], [1.0, 1.0, 1.0])
    """
    if strict and not dataset.cases:
        raise InputError(f"{dataset.root}: the dataset has no cases")
    rng = np.random.default_rng(seed)
    # the planner's foreground samples draw from a generator of their own, so that they do
    # not depend on the other statistics (nor those on them)
    plan_rng = np.random.default_rng(seed)
    sampled = set(plan_rng.permutation(len(dataset.cases))[:plan_cases].tolist())
    plan_fg: list[list[np.ndarray]] | None = None
    problems: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    overall: list[_Stats] = []
    fg: list[_Stats] = []
    label_counts: dict[int, int] = {}
    label_cases: dict[int, int] = {}
    labelled_voxels = 0
    roi_cov: list[float] = []
    roi_lab: list[np.ndarray] = []   # per case with labels and an ROI: labelled_outside()
    hashes: dict[str, str] = {}
    modality: list[str] | None = None
    known = set(dataset.label_names) if dataset.label_names else None
    for i, case in enumerate(_iterate(dataset.cases, progress)):
        rec: dict[str, Any] = {"case_id": case.case_id}
        try:
            img = dataset.load_image(case)
        except MedsegError as exc:
            if strict:
                raise
            problems.append(_problem(case, "unreadable", str(exc), case.images[0] if case.images else None))
            continue
        if strict:
            first = len(records[0]["shape"]) if records else None
            lab = _trainable_label(dataset, case, img, first, {r["n_channels"] for r in records[:1]})
        rec.update(shape=list(img.shape), spacing=list(img.spacing), n_channels=img.n_channels, dtype=str(img.dtype),
                   spacing_unknown=bool(img.meta.get(SPACING_UNKNOWN)))
        records.append(rec)
        if modality is None:
            modality = _modality(dataset, img)
        chans = img.channels_first()
        finite = chans[np.isfinite(chans)] if chans.dtype.kind == "f" else chans
        if finite.size:
            rec["range"] = [float(finite.min()), float(finite.max())]
        while len(overall) < chans.shape[0]:
            overall.append(_Stats())
            fg.append(_Stats())
        bad = 0
        if img.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(chans)))
            if bad:
                problems.append(_problem(case, "nonfinite", f"image has {bad} NaN/Inf voxel(s)", case.images[0]))
        digest = hashlib.blake2b(np.ascontiguousarray(chans).view(np.uint8).reshape(-1), digest_size=16).hexdigest()
        if digest in hashes:
            problems.append(_problem(case, "duplicate", f"image data identical to case '{hashes[digest]}'",
                                     case.images[0]))
        else:
            hashes[digest] = case.case_id
        if chans.size > 1 and all(float(np.nanmin(c)) == float(np.nanmax(c)) for c in chans if np.isfinite(c).any()):
            problems.append(_problem(case, "constant_image", "every voxel has the same value", case.images[0]))
        if not strict:
            lab = _load_checked(dataset, case, img, "label", problems)
        fgmask = None
        if lab is not None:
            vals, counts = np.unique(lab.array, return_counts=True)
            rec["labels"] = [int(v) for v in vals]
            labelled_voxels += int(lab.array.size)
            for v, n in zip(vals.tolist(), counts.tolist()):
                label_counts[int(v)] = label_counts.get(int(v), 0) + int(n)
                label_cases[int(v)] = label_cases.get(int(v), 0) + 1
            if len(vals) > MAX_LABEL_VALUES:
                problems.append(_problem(case, "too_many_labels", f"label map has {len(vals)} distinct values; "
                                         "is an image in the labels folder?", case.label))
            if known is not None:
                extra = sorted(set(int(v) for v in vals) - known)
                if extra:
                    problems.append(_problem(case, "unexpected_label", f"label values {extra} are not in "
                                             f"dataset.json's labels {sorted(known)}", case.label))
            fgmask = lab.array > 0
            if not fgmask.any():
                problems.append(_problem(case, "empty_label", "label map has no foreground", case.label))
        roi = _load_checked(dataset, case, img, "roi", problems)
        if roi is not None:
            cov = float(np.count_nonzero(roi.array)) / roi.array.size
            rec["roi_coverage"] = cov
            roi_cov.append(cov)
            if cov == 0:
                problems.append(_problem(case, "empty_roi", "ROI mask is empty", case.roi))
            if lab is not None and lab.shape == roi.shape:
                roi_lab.append(np.asarray(labelled_outside(lab.array, roi.array)))
        for c in range(chans.shape[0]):
            overall[c].add(chans[c].reshape(-1), rng, samples_per_case)
            if fgmask is not None and fgmask.any():
                fg[c].add(chans[c][fgmask], rng, samples_per_case)
        if i in sampled and fgmask is not None:
            if plan_fg is None:
                plan_fg = [[] for _ in range(chans.shape[0])]
            if fgmask.any():
                for c in range(min(chans.shape[0], len(plan_fg))):
                    v = chans[c].astype(np.float32)[fgmask]
                    if bad:
                        v = v[np.isfinite(v)]
                    if v.size > samples_per_case:
                        v = plan_rng.choice(v, samples_per_case, replace=False)
                    plan_fg[c].append(v)
    out = _assemble(dataset, records, problems, overall, fg, modality, label_counts, label_cases,
                    labelled_voxels, roi_cov)
    out.update(_planner_fields(dataset, records, out, plan_fg, label_counts))
    out["roi_outside"] = _roi_outside(roi_lab)
    out["length_unit"] = "px" if records and all(r.get("spacing_unknown") for r in records) else "mm"
    return out


def _roi_outside(per_case: list[np.ndarray]) -> dict[str, Any] | None:
    """What the ROIs mean for training (see [`medseg.roi`][]): the labels outside them."""
    if not per_case:
        return None
    labelled, outside, labelled_in, inside = (int(v) for v in np.sum(per_case, axis=0))
    return {"policy": policy_from_counts(labelled, outside, labelled_in, inside), "labelled_voxels": labelled,
            "outside_voxels": outside, "labelled_inside_voxels": labelled_in, "inside_voxels": inside,
            "n_cases": len(per_case)}


def _trainable_label(ds: Dataset, case: Case, img: Image, dims: int | None, channels: set[int]) -> Image:
    """The case's label map, or the `InputError` that stops training (``strict``)."""
    lab = ds.load_label(case, img)
    if lab is None:
        raise InputError(f"case {case.case_id} has no label map; every training case needs one "
                         "(remove it from the dataset or add its label)")
    if dims is not None and img.ndim != dims:
        raise InputError(f"case {case.case_id} is {img.ndim}D but earlier cases are {dims}D; "
                         "a dataset must be all 2D or all 3D")
    require_finite(img.array, case=case.case_id, before="training")
    if channels and img.n_channels not in channels:
        raise InputError(f"case {case.case_id} has {img.n_channels} channels but other cases have "
                         f"{sorted(channels)}; all cases need the same channels")
    la = np.asarray(lab.array)
    if la.dtype.kind == "f" or (la.size and la.min() < 0):
        raise InputError(f"case {case.case_id}: label map must hold non-negative integers")
    return lab


def _planner_fields(ds: Dataset, records: list[dict[str, Any]], out: dict[str, Any],
                    plan_fg: list[list[np.ndarray]] | None, label_counts: dict[int, int]) -> dict[str, Any]:
    """The keys [`medseg.train.planner.make_plan`][] reads."""
    fg_stats = []
    for samples in plan_fg or []:
        v = np.concatenate(samples) if samples else np.zeros(1, np.float32)
        fg_stats.append([float(np.percentile(v, 0.5)), float(np.percentile(v, 99.5)),
                         float(v.mean()), float(v.std())])
    return {"dims": out["dimensionality"], "shapes": [r["shape"] for r in records],
            "spacings": [r["spacing"] for r in records],
            "declared_modality": list(ds.channel_names), "reference": str(ds.meta.get("reference") or ""),
            "fg_stats": fg_stats, "class_counts": {str(k): v for k, v in sorted(label_counts.items())},
            "has_roi": bool(ds.has_roi)}


def _load_checked(ds: Dataset, case: Case, img: Image, what: str, problems: list) -> Image | None:
    """Load the case's label or ROI; record (not raise) unreadable files and grid mismatches."""
    path = case.label if what == "label" else case.roi
    try:
        other = ds.load_label(case) if what == "label" else ds.load_roi(case)
        if other is not None and len(case.images) > 1 and case.index is None:  # multimodal: onto the reference grid
            other = label_onto(other, img, where=str(path))
    except MedsegError as exc:
        kind = "unreadable" if "cannot read" in str(exc) or "no such" in str(exc) else "bad_label_values"
        problems.append(_problem(case, kind, str(exc), path))
        return None
    if other is None:
        return None
    name = "label map" if what == "label" else "ROI mask"
    if other.shape != img.shape:
        problems.append(_problem(case, "shape_mismatch",
                                 f"{name} shape {other.shape} differs from image shape {img.shape}", path))
        return None
    if not same_grid(img, other, atol=1e-3):
        problems.append(_problem(case, "geometry_mismatch", f"{name} geometry differs from the image (spacing "
                                 f"{fmt_values(other.spacing)} vs {fmt_values(img.spacing)}, origin "
                                 f"{fmt_values(other.origin)} vs {fmt_values(img.origin)})", path))
    return other


def _assemble(ds, records, problems, overall, fg, modality, label_counts, label_cases, labelled_voxels, roi_cov):
    dims = sorted({len(r["shape"]) for r in records})
    chans = sorted({r["n_channels"] for r in records})
    if len(dims) > 1:
        problems.append(_problem(None, "mixed_dimensions", f"cases mix {' and '.join(f'{d}D' for d in dims)} images"))
    if len(chans) > 1:
        counts = {c: sum(r["n_channels"] == c for r in records) for c in chans}
        problems.append(_problem(None, "channels_mismatch", "cases differ in channel count: "
                                 + ", ".join(f"{n} case(s) with {c}" for c, n in counts.items())))
    dtypes = sorted({r["dtype"] for r in records})
    if len(dtypes) > 1:  # e.g. Hippocampus mixes uint8 and float32 cases: normalisation must treat them alike
        counts = {d: sum(r["dtype"] == d for r in records) for d in dtypes}
        problems.append(_problem(None, "mixed_dtypes", "cases are stored in different dtypes: "
                                 + ", ".join(f"{n} case(s) {d}" for d, n in counts.items())))
    spans = [(r["case_id"], r["range"][1] - r["range"][0]) for r in records if "range" in r]
    positive = [s for s in spans if s[1] > 0]
    if len(positive) > 1:
        lo, hi = min(positive, key=lambda s: s[1]), max(positive, key=lambda s: s[1])
        if hi[1] > RANGE_RATIO * lo[1]:
            problems.append(_problem(None, "intensity_ranges", f"intensity ranges differ {hi[1] / lo[1]:.0f}-fold "
                                     f"between cases ({lo[0]}: {lo[1]:.4g}, {hi[0]}: {hi[1]:.4g}); check that they "
                                     "come from the same kind of scan and scaling"))
    main_dim = max(dims, key=lambda d: sum(len(r["shape"]) == d for r in records)) if dims else None
    same = [r for r in records if len(r["shape"]) == main_dim]
    n_ch = chans[-1] if chans else 0
    intensity = []
    for c in range(len(overall)):
        name = modality[c] if modality and c < len(modality) else f"channel_{c}"
        intensity.append({"channel": c, "name": name, "overall": overall[c].summary(),
                          "foreground": fg[c].summary()})
    labels = sorted(label_counts)
    return {
        "root": str(ds.root),
        "layout": ds.layout,
        "n_cases": len(ds.cases),
        "n_read": len(records),
        "n_test_cases": len(ds.test_cases),
        "dimensionality": main_dim,
        "n_channels": n_ch,
        "modality": modality or [],
        "channel_names": list(ds.channel_names),
        "dtypes": sorted({r["dtype"] for r in records}),
        "shape": _range([tuple(r["shape"]) for r in same]),
        "spacing": _range([tuple(r["spacing"]) for r in same]),
        "intensity": intensity,
        "labels": labels,
        "label_names": {str(k): str(v) for k, v in sorted(ds.label_names.items())},
        "label_fractions": {str(k): label_counts[k] / labelled_voxels for k in labels} if labelled_voxels else {},
        "label_cases": {str(k): label_cases[k] for k in labels},
        "n_labelled": sum("labels" in r for r in records),
        "roi_coverage": ({"mean": float(np.mean(roi_cov)), "min": float(np.min(roi_cov)), "max": float(np.max(roi_cov)),
                          "n_cases": len(roi_cov)} if roi_cov else None),
        "cases": records,
        "problems": problems,
    }

