"""The fingerprint and the description of one image as short, aligned text (what ``medseg
inspect`` prints).

Examples
--------
>>> fmt_values((0.5, 1.0, 2.0))
'0.5 x 1 x 2'
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["format_fingerprint", "format_description", "fmt_values"]


def fmt_values(values, prec: int = 4) -> str:
    """Numbers joined with " x " at ``prec`` significant digits (shapes, spacings).

    Parameters
    ----------
    values : iterable of float
    prec : int

    Returns
    -------
    str
    """
    return " x ".join(f"{v:.{prec}g}" for v in values)


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"


def format_fingerprint(fp: dict[str, Any], *, max_problems: int = 20) -> str:
    """The fingerprint as short, aligned text (what ``medseg inspect`` prints).

    Parameters
    ----------
    fp : dict
        From [`medseg.fingerprint.fingerprint`][].
    max_problems : int
        Problems listed; the rest are counted.

    Returns
    -------
    str
        One line per topic (dataset, cases, shape, spacing, intensity, labels, roi,
        problems), labels in an 11-character column.
    """
    lines = []
    dim = f"{fp['dimensionality']}D" if fp.get("dimensionality") else "?"
    test = f", {fp['n_test_cases']} test" if fp.get("n_test_cases") else ""
    lines.append(f"{'dataset':<11}{fp['root']}  ({fp['layout']} layout)")
    lines.append(f"{'cases':<11}{fp['n_cases']}{test}; {fp['n_labelled']} labelled; {dim}; "
                 f"{fp['n_channels']} channel(s): {', '.join(fp['modality']) or '?'}; dtype {', '.join(fp['dtypes'])}")
    px = fp.get("length_unit") == "px"
    for key, unit in (("shape", ""), ("spacing", " px (the files store no pixel size)" if px else " mm")):
        r = fp.get(key)
        if r:
            prec = 4 if key == "spacing" else 6
            lines.append(f"{key:<11}median {fmt_values(r['median'], prec)}{unit}   min {fmt_values(r['min'], prec)}"
                         f"   max {fmt_values(r['max'], prec)}")
    if fp["intensity"]:
        lw = max(len(ch["name"][:14]) for ch in fp["intensity"]) + 11
        heads = ("p0.5", "p50", "p99.5", "mean", "std")
        lines.append(f"{'intensity':<11}{'':<{lw}}" + "".join(f"{h:>11}" for h in heads))
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



def format_description(data: dict[str, Any]) -> str:
    """A description of one image as short, aligned text (what ``medseg inspect IMAGE`` prints).

    Parameters
    ----------
    data : dict
        From [`medseg.fingerprint.describe_image`][]: one image, or the series of a
        DICOM folder.

    Returns
    -------
    str

    Examples
    --------
    >>> print(format_description({"path": "ct/", "series": [{"uid": "1.2", "number": 3, "description": "axial 5 mm",
    ...                                                      "modality": "CT", "n_files": 40}]}))
    ct/: 1 DICOM series (pick one with --series UID)
       number  description modality  files  uid
            3  axial 5 mm  CT           40  1.2
    """
    path = data["path"]
    if "series" in data:
        rows = data["series"]
        w = max(len(r["description"]) for r in rows) + 2
        lines = [f"{path}: {len(rows)} DICOM series (pick one with --series UID)",
                 f"  {'number':>7}  {'description':<{w}}{'modality':<9}{'files':>6}  uid"]
        lines += [f"  {r['number']:>7}  {r['description']:<{w}}{r['modality']:<9}{r['n_files']:>6}  {r['uid']}"
                  for r in rows]
        return "\n".join(lines)
    f = lambda vals: " x ".join(f"{v:.6g}" for v in vals)  # noqa: E731
    ndim = data["dimensionality"]
    lines = [f"{'image':<11}{path}  ({data['format']})",
             f"{'shape':<11}{f(data['shape'])}  ({ndim}D, {data['n_channels']} channel(s), {data['dtype']})",
             f"{'spacing':<11}{f(data['spacing'])} mm",
             f"{'origin':<11}{f(data['origin'])} mm"]
    dirn = np.asarray(data["direction"])
    lines.append(f"{'direction':<11}" + ("identity" if np.allclose(dirn, np.eye(ndim)) else
                                         "; ".join(" ".join(f"{v:+.4f}" for v in row) for row in dirn)))
    for s in data["intensity"]:
        name = f"channel {s['channel']}" if data["n_channels"] > 1 else "values"
        lines.append(f"{name:<11}min {s['min']:.6g}  p0.5 {s['p0.5']:.6g}  p50 {s['p50']:.6g}  p99.5 {s['p99.5']:.6g}  "
                     f"max {s['max']:.6g}" + (f"  ({s['nonfinite']} NaN/Inf)" if s["nonfinite"] else ""))
    shown = {k: v for k, v in data["meta"].items() if k not in ("source", "format")}
    if shown:
        lines.append(f"{'meta':<11}" + ", ".join(f"{k}={v}" for k, v in shown.items()))
    return "\n".join(lines)

