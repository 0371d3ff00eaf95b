"""Dataset fingerprint: what a dataset holds and what is wrong with it.

:func:`fingerprint` reads every case once and summarises it — dimensionality, channels
and modality, shapes and spacings (median/min/max), intensity statistics per channel
(overall and inside the labels), label values with their voxel fractions, ROI coverage —
and collects the problems it finds instead of stopping at the first one. The result is
a plain JSON-serialisable ``dict``; it is what ``medseg inspect`` prints and what the
deep-learning self-configuration reads (nnU-Net style: median spacing, foreground
intensity percentiles for CT-like clipping, median shape for patch sizes).

Problem kinds
-------------
``unreadable`` (a file cannot be read), ``shape_mismatch`` / ``geometry_mismatch``
(label or ROI not on the image grid), ``bad_label_values`` (non-integer, negative,
NaN/Inf labels), ``unexpected_label`` (a value outside ``dataset.json``'s labels),
``too_many_labels`` (a "label map" with very many distinct values: probably an image),
``nonfinite`` (NaN/Inf in an image), ``empty_label`` (no foreground), ``empty_roi``,
``duplicate`` (two cases with identical image data), ``channels_mismatch``,
``mixed_dimensions``, ``constant_image``.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from medseg.errors import MedsegError
from medseg.image import Image, same_grid
from medseg.io.datasets import Case, Dataset

log = logging.getLogger(__name__)

__all__ = ["fingerprint", "format_fingerprint", "PERCENTILES"]

PERCENTILES = (0.5, 1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0, 99.5)
MAX_LABEL_VALUES = 100  # more distinct values than this in a label map: probably not a label map


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
    if not progress:
        return cases
    from tqdm.auto import tqdm

    return tqdm(cases, desc="inspect", unit="case", leave=False, disable=None)


def fingerprint(dataset: Dataset, *, samples_per_case: int = 10_000, seed: int = 0,
                progress: bool = False) -> dict[str, Any]:
    """Summarise ``dataset`` and list its problems (never raises for a bad case).

    Parameters
    ----------
    dataset : from :func:`medseg.io.load_dataset`.
    samples_per_case : voxels sampled per case and channel (overall, and again inside
        the labels) for the percentiles; means, std, min and max are exact.
    seed : seed of the sampling.
    progress : show a progress bar on a terminal.

    Returns
    -------
    dict
        Keys include ``n_cases`` (int), ``dimensionality``, ``n_channels``, ``modality``
        (per channel), ``shape`` and ``spacing`` (``median``/``min``/``max`` per spatial
        axis, NumPy order), ``intensity`` (per channel: ``overall`` and ``foreground``
        with ``mean``, ``std``, ``min``, ``max``, ``percentiles``), ``labels`` (sorted list
        of values present), ``label_fractions`` (value -> voxel fraction),
        ``label_cases`` (value -> number of cases containing it), ``roi_coverage``,
        ``cases`` (one record per case) and ``problems`` (list of ``{case, kind,
        message, file}``).

    Examples
    --------
    >>> from medseg.io import load_dataset                         # doctest: +SKIP
    >>> fp = fingerprint(load_dataset("Hippocampus/"))              # doctest: +SKIP
    >>> fp["n_cases"], fp["labels"], fp["spacing"]["median"]        # doctest: +SKIP
    (200, [0, 1, 2], [1.0, 1.0, 1.0])
    """
    rng = np.random.default_rng(seed)
    problems: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    overall: list[_Stats] = []
    fg: list[_Stats] = []
    label_counts: dict[int, int] = {}
    label_cases: dict[int, int] = {}
    labelled_voxels = 0
    roi_cov: list[float] = []
    hashes: dict[str, str] = {}
    modality: list[str] | None = None
    known = set(dataset.label_names) if dataset.label_names else None
    for case in _iterate(dataset.cases, progress):
        rec: dict[str, Any] = {"case_id": case.case_id}
        try:
            img = dataset.load_image(case)
        except MedsegError as exc:
            problems.append(_problem(case, "unreadable", str(exc), case.images[0] if case.images else None))
            continue
        rec.update(shape=list(img.shape), spacing=list(img.spacing), n_channels=img.n_channels, dtype=str(img.dtype))
        records.append(rec)
        if modality is None:
            modality = _modality(dataset, img)
        chans = img.channels_first()
        while len(overall) < chans.shape[0]:
            overall.append(_Stats())
            fg.append(_Stats())
        if img.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(chans)))
            if bad:
                problems.append(_problem(case, "nonfinite", f"image has {bad} NaN/Inf voxel(s)", case.images[0]))
        digest = hashlib.blake2b(np.ascontiguousarray(chans).view(np.uint8).reshape(-1), digest_size=16).hexdigest()
        if digest in hashes:
            problems.append(_problem(case, "duplicate", f"image data identical to case '{hashes[digest]}'", case.images[0]))
        else:
            hashes[digest] = case.case_id
        if chans.size > 1 and all(float(np.nanmin(c)) == float(np.nanmax(c)) for c in chans if np.isfinite(c).any()):
            problems.append(_problem(case, "constant_image", "every voxel has the same value", case.images[0]))
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
                    problems.append(_problem(case, "unexpected_label", f"label values {extra} are not in dataset.json's "
                                             f"labels {sorted(known)}", case.label))
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
        for c in range(chans.shape[0]):
            overall[c].add(chans[c].reshape(-1), rng, samples_per_case)
            if fgmask is not None and fgmask.any():
                fg[c].add(chans[c][fgmask], rng, samples_per_case)
    return _assemble(dataset, records, problems, overall, fg, modality, label_counts, label_cases,
                     labelled_voxels, roi_cov)


def _load_checked(ds: Dataset, case: Case, img: Image, what: str, problems: list) -> Image | None:
    """Load the case's label or ROI; record (not raise) unreadable files and grid mismatches."""
    path = case.label if what == "label" else case.roi
    try:
        other = ds.load_label(case) if what == "label" else ds.load_roi(case)
    except MedsegError as exc:
        kind = "unreadable" if "cannot read" in str(exc) or "no such" in str(exc) else "bad_label_values"
        problems.append(_problem(case, kind, str(exc), path))
        return None
    if other is None:
        return None
    name = "label map" if what == "label" else "ROI mask"
    if other.shape != img.shape:
        problems.append(_problem(case, "shape_mismatch", f"{name} shape {other.shape} differs from image shape {img.shape}", path))
        return None
    if not same_grid(img, other, atol=1e-3):
        problems.append(_problem(case, "geometry_mismatch", f"{name} geometry differs from the image (spacing "
                                 f"{_fmt(other.spacing)} vs {_fmt(img.spacing)}, origin {_fmt(other.origin)} vs "
                                 f"{_fmt(img.origin)})", path))
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
    main_dim = max(dims, key=lambda d: sum(len(r["shape"]) == d for r in records)) if dims else None
    same = [r for r in records if len(r["shape"]) == main_dim]
    n_ch = chans[-1] if chans else 0
    intensity = []
    for c in range(len(overall)):
        intensity.append({"channel": c, "name": (modality or [])[c] if modality and c < len(modality) else f"channel_{c}",
                          "overall": overall[c].summary(), "foreground": fg[c].summary()})
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
        "label_names": {str(k): v for k, v in sorted(ds.label_names.items())},
        "label_fractions": {str(k): label_counts[k] / labelled_voxels for k in labels} if labelled_voxels else {},
        "label_cases": {str(k): label_cases[k] for k in labels},
        "n_labelled": sum("labels" in r for r in records),
        "roi_coverage": ({"mean": float(np.mean(roi_cov)), "min": float(np.min(roi_cov)), "max": float(np.max(roi_cov)),
                          "n_cases": len(roi_cov)} if roi_cov else None),
        "cases": records,
        "problems": problems,
    }


# ---------------------------------------------------------------------- human-readable text
def _fmt(values, prec: int = 4) -> str:
    return " x ".join(f"{v:.{prec}g}" for v in values)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_fingerprint(fp: dict[str, Any], *, max_problems: int = 20) -> str:
    """The fingerprint as short, aligned text (what ``medseg inspect`` prints)."""
    lines = []
    dim = f"{fp['dimensionality']}D" if fp.get("dimensionality") else "?"
    test = f", {fp['n_test_cases']} test" if fp.get("n_test_cases") else ""
    lines.append(f"{'dataset':<11}{fp['root']}  ({fp['layout']} layout)")
    lines.append(f"{'cases':<11}{fp['n_cases']}{test}; {fp['n_labelled']} labelled; {dim}; "
                 f"{fp['n_channels']} channel(s): {', '.join(fp['modality']) or '?'}; dtype {', '.join(fp['dtypes'])}")
    for key, unit in (("shape", ""), ("spacing", " mm")):
        r = fp.get(key)
        if r:
            prec = 4 if key == "spacing" else 6
            lines.append(f"{key:<11}median {_fmt(r['median'], prec)}{unit}   min {_fmt(r['min'], prec)}   max {_fmt(r['max'], prec)}")
    if fp["intensity"]:
        lw = max(len(ch["name"][:14]) for ch in fp["intensity"]) + 11
        lines.append(f"{'intensity':<11}{'':<{lw}}" + "".join(f"{h:>11}" for h in ("p0.5", "p50", "p99.5", "mean", "std")))
        for ch in fp["intensity"]:
            for part in ("overall", "foreground"):
                s = ch[part]
                if s is None:
                    continue
                p = s["percentiles"]
                label = f"{ch['name'][:14]} {'all' if part == 'overall' else 'in labels'}"
                vals = (p["0.5"], p["50"], p["99.5"], s["mean"], s["std"])
                lines.append(f"{'':<11}{label:<{lw}}" + "".join(f"{_num(v):>11}" for v in vals))
    if fp["labels"]:
        names = fp.get("label_names") or {}
        parts = [f"{v}{(' ' + names[str(v)]) if str(v) in names else ''} {100 * fp['label_fractions'][str(v)]:.3g}%"
                 f" ({fp['label_cases'][str(v)]} cases)" for v in fp["labels"]]
        lines.append(f"{'labels':<11}" + ";  ".join(parts))
    else:
        lines.append(f"{'labels':<11}none")
    if fp.get("roi_coverage"):
        r = fp["roi_coverage"]
        lines.append(f"{'roi':<11}covers {100 * r['mean']:.3g}% of the image on average "
                     f"(min {100 * r['min']:.3g}%, max {100 * r['max']:.3g}%; {r['n_cases']} cases)")
    probs = fp["problems"]
    if not probs:
        lines.append(f"{'problems':<11}none")
    else:
        lines.append(f"{'problems':<11}{len(probs)}")
        for p in probs[:max_problems]:
            where = f"{p['case']}: " if p["case"] else ""
            msg = p["message"]
            if p.get("file") and p["file"] in msg:
                msg = msg.replace(p["file"] + ": ", "")
            lines.append(f"  {p['kind']:<18} {where}{msg}")
        if len(probs) > max_problems:
            lines.append(f"  … and {len(probs) - max_problems} more (see --json)")
    return "\n".join(lines)
