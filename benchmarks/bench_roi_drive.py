"""DRIVE: what trained models predict outside the field of view when no ROI is given.

Trains ``random-forest`` (defaults) and ``unet`` (``--time-budget``) with the README's
three-folder command on the training cases of one DRIVE fold (FOV masks as ``--roi``), then
predicts the held-out images with ``medseg predict`` and *no* ROI, as a user does, and reports

* the share of the pixels outside the FOV labelled vessel (the whole-output check no in-FOV
  metric shows), and
* F1 inside the FOV (pooled over the fold's images, and the mean over images).

``--before-src DIR`` runs the same commands a second time with an older medseg (``DIR`` is the
``src`` folder of another checkout, e.g. ``git worktree add /tmp/old COMMIT``) and prints the
ratios new/old: the peer here is medseg before the ROI change.

Usage::

    python benchmarks/bench_roi_drive.py --fold 0 --unet-minutes 5 --before-src /tmp/old/src

Folds are ``numpy.array_split`` of the 20 sorted cases into 5, as in ``bench_ml_drive.py``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from medseg.io import load_dataset, read_label
from medseg.testing import shared_data


def _link_fold(root: Path, work: Path, fold: int, n_folds: int) -> tuple[Path, list[str]]:
    """Training folders (images/labels/roi symlinks) and a test-image folder for one fold."""
    ds = load_dataset(images=root / "images", labels=root / "1st_manual", roi=root / "mask")
    cases = sorted(ds.cases, key=lambda c: c.case_id)
    test_idx = set(np.array_split(np.arange(len(cases)), n_folds)[fold].tolist())
    for sub in ("train/images", "train/labels", "train/roi", "test"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    test_ids = []
    for i, c in enumerate(cases):
        if i in test_idx:
            (work / "test" / c.images[0].name).symlink_to(c.images[0])
            test_ids.append(c.case_id)
        else:
            (work / "train/images" / c.images[0].name).symlink_to(c.images[0])
            (work / "train/labels" / c.label.name).symlink_to(c.label)
            (work / "train/roi" / c.roi.name).symlink_to(c.roi)
    return work / "test", test_ids


def _medseg(args: list[str], src: str | None, threads: int) -> float:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "medseg", "-q", *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"medseg {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def run_version(root: Path, work: Path, fold: int, methods: list[str], minutes: float, src: str | None,
                threads: int, seed: int = 0) -> dict:
    test_dir, test_ids = _link_fold(root, work, fold, 5)
    ds = load_dataset(images=root / "images", labels=root / "1st_manual", roi=root / "mask")
    by_id = {c.case_id: c for c in ds.cases}
    out = {}
    for m in methods:
        model = work / f"model-{m}"
        extra = ([f"--time-budget={minutes}"] if m == "unet" else []) + [f"--seed={seed}"]
        t_train = _medseg(["train", "--images", str(work / "train/images"), "--labels", str(work / "train/labels"),
                           "--roi", str(work / "train/roi"), "--method", m, *extra, "--out", str(model)], src, threads)
        pred_dir = work / f"pred-{m}"
        t_pred = _medseg(["predict", str(model), str(test_dir), str(pred_dir)], src, threads)
        outside, tp, fp, fn, per = [], 0, 0, 0, []
        for cid in test_ids:
            case = by_id[cid]
            pred = next(pred_dir.glob(case.images[0].name.split(".")[0] + ".*"))
            p = read_label(pred).array > 0
            t = read_label(case.label).array > 0
            r = read_label(case.roi).array > 0
            outside.append(float(p[~r].mean()))
            a, b, c = np.sum(p & t & r), np.sum(p & ~t & r), np.sum(~p & t & r)
            tp, fp, fn = tp + a, fp + b, fn + c
            per.append(2 * a / max(2 * a + b + c, 1))
        out[m] = {"outside_fov_fg": float(np.mean(outside)), "f1_pooled": float(2 * tp / max(2 * tp + fp + fn, 1)),
                  "f1_mean": float(np.mean(per)), "train_s": t_train, "predict_s": t_pred}
        print(f"  {m:14s} vessel outside the FOV {100 * out[m]['outside_fov_fg']:7.3f} % of its pixels   "
              f"F1 in FOV pooled {out[m]['f1_pooled']:.4f} mean {out[m]['f1_mean']:.4f}   "
              f"(train {t_train:.0f} s, predict {t_pred:.0f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--methods", default="random-forest,unet")
    ap.add_argument("--unet-minutes", type=float, default=5.0)
    ap.add_argument("--before-src", default=None, help="src folder of an older medseg to compare with")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--seed", type=int, default=0, help="training seed (both versions; run several for the spread)")
    args = ap.parse_args()
    root = shared_data("DRIVE", "training")
    if root is None:
        raise SystemExit("DRIVE not found under ../shared/data; nothing to benchmark")
    methods = args.methods.split(",")
    print(f"DRIVE fold {args.fold} of 5; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} threads; unet --time-budget {args.unet_minutes} min; predictions without an ROI")
    results = {}
    versions = [("after", None)] + ([("before", args.before_src)] if args.before_src else [])
    for name, src in versions:
        print(f"{name}:" + (f" (PYTHONPATH={src})" if src else " (this checkout)"), flush=True)
        with tempfile.TemporaryDirectory(prefix="medseg-roi-") as tmp:
            results[name] = run_version(root, Path(tmp), args.fold, methods, args.unet_minutes, src, args.threads,
                                        args.seed)
    if "before" in results:
        print("ratios after/before:")
        for m in methods:
            a, b = results["after"][m], results["before"][m]
            ratio = a["outside_fov_fg"] / b["outside_fov_fg"] if b["outside_fov_fg"] else float("nan")
            print(f"  {m:14s} vessel outside the FOV x{ratio:.4f}   F1 pooled {a['f1_pooled'] - b['f1_pooled']:+.4f}"
                  f"   F1 mean {a['f1_mean'] - b['f1_mean']:+.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
