"""``medseg inspect DATASET [--images DIR --labels DIR --roi DIR] [--json FILE]``.

Also inspects one image file or DICOM folder (``--series UID`` picks a series; a folder
holding several series lists them).
"""
from __future__ import annotations

from pathlib import Path

HELP = "print a dataset's fingerprint and problems (or describe one image / DICOM folder)"
DESCRIPTION = """Print the fingerprint of a dataset: cases, channels, shapes, spacings
(median/min/max), intensity percentiles per channel (overall and inside the labels),
label values with their voxel fractions, ROI coverage, and the problems found
(image/label mismatch, bad label values, NaN/Inf, empty labels, duplicates).

DATASET is a folder with images/ (+ labels/, roi/), an nnU-Net/MSD folder, or
images.npy + labels.npy; or give --images/--labels/--roi. Given one image file or a
DICOM folder instead, it describes that image (a folder with several DICOM series lists
them; pick one with --series UID).

Examples:
  medseg inspect data/Hippocampus --json fingerprint.json
  medseg inspect --images DRIVE/images --labels DRIVE/1st_manual --roi DRIVE/mask
  medseg inspect dicom_study/ --series 1.2.840.113619.2.55.3.1
"""


def add_arguments(p) -> None:
    from medseg.cli.common import add_dataset_args

    add_dataset_args(p)
    p.add_argument("--json", metavar="FILE", help="also write the fingerprint as JSON (atomically)")
    p.add_argument("--series", metavar="UID", help="DICOM folder with several series: the one to describe")
    p.add_argument("--max-problems", type=int, default=20, metavar="N", help="problems listed in the text output (default 20)")


def _is_single_image(path: Path) -> bool:
    """True for an image file or a DICOM folder (as opposed to a dataset)."""
    from medseg.io import is_image_file
    from medseg.io.dicom import dicom_files, looks_like_dicom

    if path.is_file():
        if path.suffix.lower() in (".npy", ".npz") and path.name.lower().startswith("images"):
            return False
        return is_image_file(path) or looks_like_dicom(path)
    if path.is_dir():
        markers = ("images", "image", "imgs", "imagesTr", "dataset.json", "images.npy", "images.npz")
        if any((path / m).exists() for m in markers):
            return False
        return bool(dicom_files(path))
    return False


def run(args, extra) -> int:
    from medseg.cli.common import dataset_from_args
    from medseg.errors import ConfigError
    from medseg.fingerprint import fingerprint, format_fingerprint

    if args.dataset and not args.images and _is_single_image(Path(args.dataset)):
        data, text = _describe_image(Path(args.dataset), args.series)
    else:
        if args.series:
            raise ConfigError("--series applies to a DICOM folder, not to a dataset")
        ds = dataset_from_args(args)
        data = fingerprint(ds, progress=True)
        text = format_fingerprint(data, max_problems=args.max_problems)
    if args.json:
        from medseg.config import save_json

        save_json(data, args.json)
    print(text)
    if args.json:
        print(f"{'json':<11}{args.json}")
    return 0


def _describe_image(path: Path, series: str | None) -> tuple[dict, str]:
    import numpy as np

    from medseg.io import read_image
    from medseg.io.dicom import list_series

    if path.is_dir() and series is None:
        found = list_series(path)
        if len(found) > 1:
            rows = [{"uid": s.uid, "number": s.number, "description": s.description, "modality": s.modality,
                     "n_files": s.n_files} for s in found]
            w = max(len(r["description"]) for r in rows) + 2
            lines = [f"{path}: {len(rows)} DICOM series (pick one with --series UID)",
                     f"  {'number':>7}  {'description':<{w}}{'modality':<9}{'files':>6}  uid"]
            lines += [f"  {r['number']:>7}  {r['description']:<{w}}{r['modality']:<9}{r['n_files']:>6}  {r['uid']}" for r in rows]
            return {"path": str(path), "series": rows}, "\n".join(lines)
    img = read_image(path, series=series)
    chans = img.channels_first()
    stats = []
    for c in range(chans.shape[0]):
        v = chans[c]
        fin = v[np.isfinite(v)] if v.dtype.kind == "f" else v
        pct = np.percentile(fin, (0.5, 50, 99.5)) if fin.size else [float("nan")] * 3
        stats.append({"channel": c, "min": float(fin.min()) if fin.size else None, "max": float(fin.max()) if fin.size else None,
                      "mean": float(fin.mean()) if fin.size else None, "p0.5": float(pct[0]), "p50": float(pct[1]),
                      "p99.5": float(pct[2]), "nonfinite": int(v.size - fin.size)})
    meta = {k: v for k, v in img.meta.items() if isinstance(v, (str, int, float, bool)) and not k.startswith("nifti_")}
    data = {"path": str(path), "format": img.meta.get("format"), "dimensionality": img.ndim, "shape": list(img.shape),
            "n_channels": img.n_channels, "dtype": str(img.dtype), "spacing": list(img.spacing),
            "origin": list(img.origin), "direction": np.asarray(img.direction).tolist(), "intensity": stats, "meta": meta}
    f = lambda vals: " x ".join(f"{v:.6g}" for v in vals)  # noqa: E731
    lines = [f"{'image':<11}{path}  ({data['format']})",
             f"{'shape':<11}{f(img.shape)}  ({img.ndim}D, {img.n_channels} channel(s), {img.dtype})",
             f"{'spacing':<11}{f(img.spacing)} mm",
             f"{'origin':<11}{f(img.origin)} mm"]
    dirn = np.asarray(img.direction)
    lines.append(f"{'direction':<11}" + ("identity" if np.allclose(dirn, np.eye(img.ndim)) else
                                         "; ".join(" ".join(f"{v:+.4f}" for v in row) for row in dirn)))
    for s in stats:
        name = f"channel {s['channel']}" if img.n_channels > 1 else "values"
        lines.append(f"{name:<11}min {s['min']:.6g}  p0.5 {s['p0.5']:.6g}  p50 {s['p50']:.6g}  p99.5 {s['p99.5']:.6g}  "
                     f"max {s['max']:.6g}" + (f"  ({s['nonfinite']} NaN/Inf)" if s["nonfinite"] else ""))
    shown = {k: v for k, v in meta.items() if k not in ("source", "format")}
    if shown:
        lines.append(f"{'meta':<11}" + ", ".join(f"{k}={v}" for k, v in shown.items()))
    return data, "\n".join(lines)
