"""retina-vessels recipe on DRIVE/training vs two peers built from scikit-image.

Peers: scikit-image's plain Sato + Otsu, and the stronger reference pipeline of issue 26
(CLAHE on the green channel, ``sato`` with sigmas 1-3 plus a white top-hat of the inverted
green channel, the top q % of FOV pixels), whose two parameters (top-hat disc radius and q)
are picked on one half of the images and scored on the other, both ways round (two-fold):
the reference gets parameters tuned on DRIVE, the recipe none.

F1 (Dice), sensitivity and specificity inside each image's field-of-view mask, the
convention of the field. The recipe's parameters are those in
src/medseg/recipes/retina-vessels.json (derived from the image: FOV diameter, Otsu);
nothing here is tuned on these images.

Usage: python benchmarks/bench_retina.py [DRIVE_TRAINING_DIR]
       python benchmarks/bench_retina.py --cv [DRIVE_TRAINING_DIR]

``--cv`` is a two-fold cross-validation of the one design choice left open, the histogram
rule that sets the hysteresis threshold (otsu, triangle, li): the rule is chosen on images
21-30 and scored on 31-40, then the other way round; the held-out F1 is reported.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def scores(pred: np.ndarray, truth: np.ndarray, fov: np.ndarray) -> tuple[float, float, float]:
    p, t = pred[fov] > 0, truth[fov] > 0
    tp = np.sum(p & t)
    fp = np.sum(p & ~t)
    fn = np.sum(~p & t)
    tn = np.sum(~p & ~t)
    return 2 * tp / max(2 * tp + fp + fn, 1), tp / max(tp + fn, 1), tn / max(tn + fp, 1)


def baseline(rgb: np.ndarray, fov: np.ndarray) -> np.ndarray:
    """scikit-image's plain recipe: Sato (default scales) on the green channel + Otsu in the FOV."""
    from skimage.filters import sato, threshold_otsu

    r = sato(rgb[1].astype(float), black_ridges=True)
    return r > threshold_otsu(r[fov])


RULES = ("otsu", "triangle", "li")
REF_RADII = (5, 7, 9, 11)
REF_TOP = (10, 11, 12, 13, 14, 15, 16)


def reference_scores(rgb: np.ndarray, truth: np.ndarray, fov: np.ndarray) -> dict[tuple[int, int], float]:
    """F1 of the issue's reference pipeline for every (top-hat radius, top q %) on one image."""
    from skimage import exposure, filters, morphology

    g = exposure.equalize_adapthist(rgb[1].astype(float) / 255.0, clip_limit=0.01)
    s = filters.sato(g, sigmas=[1, 2, 3], black_ridges=True)
    zs = (s - s[fov].mean()) / s[fov].std()
    out = {}
    for rad in REF_RADII:
        th = morphology.white_tophat(1.0 - g, morphology.disk(rad))
        c = zs + (th - th[fov].mean()) / th[fov].std()
        for q in REF_TOP:
            out[rad, q] = scores(c >= np.percentile(c[fov], 100 - q), truth, fov)[0]
    return out


def reference_two_fold(grids: list[dict[tuple[int, int], float]]) -> tuple[float, list[tuple[int, int]]]:
    """Held-out mean F1 of the reference with its parameters picked on the other half."""
    half = len(grids) // 2
    held, picked = [], []
    for train, test in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
        best = max(grids[0], key=lambda k: np.mean([g[k] for g in grids[train]]))
        picked.append(best)
        held.extend(g[best] for g in grids[test])
    return float(np.mean(held)), picked


def cross_validate(base: Path) -> int:
    from medseg.io import read_image, read_label
    from medseg.recipes import get_recipe

    recipes = {r: get_recipe("retina-vessels", rule=r) for r in RULES}
    f1 = {r: [] for r in RULES}
    names = []
    for f in sorted((base / "images").glob("*_training.tif")):
        n = f.name[:2]
        img = read_image(f)
        truth = read_label(base / "1st_manual" / f"{n}_manual1.gif").array > 0
        fov = read_label(base / "mask" / f"{n}_training_mask.gif").array > 0
        names.append(n)
        for r in RULES:
            f1[r].append(scores(recipes[r](img).array, truth, fov)[0])
        print(n, "  ".join(f"{r} {f1[r][-1]:.3f}" for r in RULES), flush=True)
    half = len(names) // 2
    folds = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    held_out = []
    for sel, test in folds:
        best = max(RULES, key=lambda r: np.mean(f1[r][sel]))
        score = f1[best][test]
        held_out.extend(score)
        print(f"choose on {names[sel][0]}-{names[sel][-1]}: {best} "
              f"(F1 {np.mean(f1[best][sel]):.4f}); held out {names[test][0]}-{names[test][-1]}: F1 {np.mean(score):.4f}")
    print(f"two-fold cross-validated F1 of the rule selection: {np.mean(held_out):.4f}")
    return 0


def main(*argv: str) -> int:
    cv = "--cv" in argv
    argv = tuple(a for a in argv if a != "--cv")
    root = argv[0] if argv else None
    from medseg.io import read_image, read_label
    from medseg.recipes import get_recipe
    from medseg.testing import shared_data

    base = Path(root) if root else shared_data("DRIVE", "training")
    if base is None or not base.is_dir():
        print("DRIVE/training not found; skipping")
        return 0
    if cv:
        return cross_validate(base)
    recipe = get_recipe("retina-vessels")
    rows = []
    grids = []
    t_recipe = t_base = 0.0
    for f in sorted((base / "images").glob("*_training.tif")):
        n = f.name[:2]
        img = read_image(f)
        truth = read_label(base / "1st_manual" / f"{n}_manual1.gif").array > 0
        fov = read_label(base / "mask" / f"{n}_training_mask.gif").array > 0
        t0 = time.perf_counter()
        pred = recipe(img).array
        t1 = time.perf_counter()
        pb = baseline(img.array, fov)
        t2 = time.perf_counter()
        t_recipe += t1 - t0
        t_base += t2 - t1
        grids.append(reference_scores(img.array, truth, fov))
        rows.append((n, *scores(pred, truth, fov), *scores(pb, truth, fov)))
        print(f"{n}  recipe F1 {rows[-1][1]:.3f} Se {rows[-1][2]:.3f} Sp {rows[-1][3]:.3f}   "
              f"sato+otsu F1 {rows[-1][4]:.3f} Se {rows[-1][5]:.3f} Sp {rows[-1][6]:.3f}", flush=True)
    a = np.array([r[1:] for r in rows])
    m = a.mean(0)
    print(f"\nDRIVE/training, {len(rows)} images, metrics inside the FOV mask (mean over images)")
    print(f"retina-vessels recipe : F1 {m[0]:.4f}  Se {m[1]:.4f}  Sp {m[2]:.4f}  ({t_recipe / len(rows):.2f} s/image)")
    print(f"skimage sato + Otsu   : F1 {m[3]:.4f}  Se {m[4]:.4f}  Sp {m[5]:.4f}  ({t_base / len(rows):.2f} s/image)")
    ref, picked = reference_two_fold(grids)
    print(f"reference (CLAHE, sato 1-3 + white top-hat, top q %; two-fold, parameters picked on the other half "
          f"(radius, q): {picked[0]} and {picked[1]}): F1 {ref:.4f}")
    print(f"F1 ratio recipe / sato+Otsu: {m[0] / m[3]:.3f}; recipe / reference: {m[0] / ref:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
