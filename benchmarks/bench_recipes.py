"""Recipes on the real data we have: what each expects, and brain-mask validated without ground truth.

1. Expectations: every recipe against every kind of real file in ../shared/data (T1 DICOM
   series, NRRD volumes, DRIVE photographs, Hippocampus NIfTI) and pydicom's CT_small.dcm (a
   real CT slice shipped with pydicom): accepted, warned (modality unknown) or refused. Then
   bone-ct and lung-ct on CT_small.dcm, the only real CT at hand (no ground truth: the share
   of the >200 HU pixels that bone-ct keeps, and an overlay).
2. brain-mask on four real T1 volumes (PyRadiomics brain1/brain2 NRRD, 25/23 slices of
   6.5 mm; TCIA PGBM-001 T1post and T1prereg DICOM series, 24 slices of 6.5 mm). There is no
   brain-mask ground truth, so three checks that need none:

   * tumour coverage: share of the tumour label's voxels inside the mask (a brain mask
     holds the tumour: should be ~1);
   * scalp leak: share of the mask lying within 5 mm of the head's outer surface (in-plane
     distance; the head is a reference made here: Otsu of the log intensities, holes filled per
     slice, largest component). Skin, fat and bone lie there; brain does not (it lies >= 10 mm
     under the skin in adults), so this should be 0; the worst slice is printed too;
   * plausibility: mask volume (ml) and mask/head volume ratio (an adult brain with its CSF
     is 1100-1800 ml; these series cover the whole brain).

   Contenders, measured in the same run: the brain-mask recipe (method ``skull-strip``); the
   same without its depth floor (``--min-depth 0``: the floor keeps the mask deeper than ~6-15
   mm under the skin, which would make the leak measure pass by construction, so this shows
   what the rest of the method does alone); the recipe as it was before (4-class multi-Otsu,
   opening, largest component; its JSON is kept below); plain scikit-image (Otsu, largest
   component, holes filled per slice).
   Ratios are against the previous recipe. Nothing is tuned on these volumes: the recipe's
   parameters are derived from each image (see src/medseg/classical/skullstrip.py).

Usage: python benchmarks/bench_recipes.py [--png DIR] [--repeat N]
       (--png: eight slices per volume and contender, mask outline red, tumour green, the
       5 mm scalp shell shaded blue)
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

#: the brain-mask recipe as it was before this benchmark (commit 7b53bcd)
OLD_BRAIN_MASK = {
    "name": "brain-mask-v0", "dims": [3], "method": "multi-otsu",
    "preprocess": [{"step": "gaussian", "params": {"sigma": 1.0}}],
    "params": {"classes": 4, "foreground_from": 2, "opening": 3.0, "keep_largest": 1},
    "post": [{"closing": 3.0, "fill_holes": True}],
}

TCIA = "TCIA-Brain-Tumor-Progression/PGBM-001/04-02-1992-FH-HEADBrain Protocols-79896"
VOLUMES = {  # name: (image, tumour label)
    "brain1": ("pyradiomics/brain1_image.nrrd", "pyradiomics/brain1_label.nrrd"),
    "brain2": ("pyradiomics/brain2_image.nrrd", "pyradiomics/brain2_label.nrrd"),
    "T1post": (f"{TCIA}/11-T1post-80644", f"{TCIA}/5388-MaskTumor-63335"),
    "T1prereg": (f"{TCIA}/34907-T1prereg-43695", f"{TCIA}/5388-MaskTumor-63335"),
}
SHELL_MM = 5.0


def reference_head(a: np.ndarray) -> np.ndarray:
    """The head for the leak measure, independent of the contenders' code."""
    from skimage.filters import threshold_otsu

    logs = np.log1p(np.maximum(a.astype(np.float64) - a.min(), 0))
    fg = a > np.expm1(threshold_otsu(logs)) + a.min()
    fg = np.stack([ndi.binary_fill_holes(s) for s in fg])
    lbl, _ = ndi.label(fg)
    sizes = np.bincount(lbl.ravel())
    sizes[0] = 0
    return np.stack([ndi.binary_fill_holes(s) for s in lbl == sizes.argmax()])


def plain_otsu(img) -> np.ndarray:
    """The scikit-image peer: Otsu, largest 3D component, holes filled per slice."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label

    a = np.asarray(img.array, dtype=np.float32)
    lbl = label(a > threshold_otsu(a))
    sizes = np.bincount(lbl.ravel())
    sizes[0] = 0
    return np.stack([ndi.binary_fill_holes(s) for s in lbl == sizes.argmax()])


def measures(mask: np.ndarray, tumour: np.ndarray, head: np.ndarray, shell: np.ndarray, spacing) -> dict:
    m = mask > 0
    n = max(int(m.sum()), 1)
    per_slice = [np.count_nonzero(m[z] & shell[z]) / np.count_nonzero(m[z]) for z in range(len(m)) if m[z].any()]
    return {"coverage": float(m[tumour].mean()), "leak": float(np.count_nonzero(m & shell) / n),
            "leak_worst_slice": max(per_slice, default=0.0), "outside_head": float(np.count_nonzero(m & ~head) / n),
            "ml": float(m.sum() * np.prod(spacing) / 1000.0), "ratio": float(m.sum() / head.sum())}


def overlay(path: Path, img, mask: np.ndarray, tumour: np.ndarray, shell: np.ndarray, title: str) -> None:
    """Eight slices, bottom to top: mask outline red, tumour green, the scalp shell shaded blue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    a = np.asarray(img.array, dtype=np.float32)
    lo, hi = np.percentile(a, [1, 99.5])
    zs = np.linspace(1, a.shape[0] - 2, 8).astype(int)
    fig, axs = plt.subplots(2, 4, figsize=(16, 8.5))
    for ax, z in zip(axs.ravel(), zs):
        ax.imshow(a[z], cmap="gray", vmin=lo, vmax=hi)
        rgba = np.zeros(a.shape[1:] + (4,))
        rgba[shell[z]] = (0.2, 0.4, 1.0, 0.25)
        rgba[find_boundaries(tumour[z])] = (0, 1, 0, 1)
        rgba[find_boundaries(mask[z] > 0)] = (1, 0, 0, 1)
        ax.imshow(rgba)
        ax.set_title(f"{title}  z={z}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)


def expectations_table(root: Path) -> None:
    from medseg.errors import InputError
    from medseg.io import read_image
    from medseg.recipes import RECIPES, get_recipe

    files = {"T1post (DICOM MR)": root / VOLUMES["T1post"][0], "brain1 (NRRD)": root / VOLUMES["brain1"][0],
             "DRIVE 21 (TIFF RGB)": root / "DRIVE/training/images/21_training.tif",
             "Hippocampus 001 (NIfTI)": root / "Hippocampus/imagesTr/hippocampus_001_0000.nii.gz"}
    try:
        from pydicom.data import get_testdata_file

        files["CT_small (DICOM CT)"] = Path(get_testdata_file("CT_small.dcm"))
    except Exception as exc:  # pydicom's test data missing: not this benchmark's concern
        print(f"(pydicom CT_small.dcm unavailable: {exc})")
    warned: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            warned.append(record.getMessage())

    logging.getLogger("medseg").addHandler(Catch(logging.WARNING))
    names = sorted(RECIPES.names())
    print("\n## Expectations (accepted / warned / refused, before any segmentation)\n")
    print("| file | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, f in files.items():
        if not f.exists():
            continue
        img = read_image(f)
        cells = []
        for name in names:
            seg = get_recipe(name)
            warned.clear()
            try:
                if img.ndim not in seg.dims:
                    raise InputError(f"{img.ndim}D")
                from medseg.recipes import check_expectations

                check_expectations(seg.recipe, img)
                cells.append("warned" if warned else "accepted")
            except InputError as exc:
                msg = str(exc)
                cells.append("refused: " + ("dims" if msg.endswith("D") else msg.split("; ")[-1][:60]))
        print(f"| {label} | " + " | ".join(cells) + " |")


def ct_section(png: Path | None) -> None:
    """bone-ct and lung-ct on the one real CT at hand (a 128x128 thoracic slice, cropped)."""
    from medseg.io import read_image
    from medseg.recipes import get_recipe

    try:
        from pydicom.data import get_testdata_file

        img = read_image(get_testdata_file("CT_small.dcm"))
    except Exception as exc:  # pydicom's test data missing
        print(f"(no real CT: {exc})")
        return
    a = np.asarray(img.array, dtype=np.float64)
    print("\n## CT recipes on pydicom's CT_small.dcm (the only real CT here: one cropped thoracic slice)\n")
    print("| recipe | mask share of the slice | share of >200 HU pixels inside | share of the mask > 200 HU or enclosed |")
    print("|---|---|---|---|")
    for name in ("bone-ct", "lung-ct"):
        m = get_recipe(name)(img).array > 0
        bone = a > 200
        inside = float(m[bone].mean()) if name == "bone-ct" else float("nan")
        print(f"| {name} | {m.mean():.3f} | {inside:.3f} | "
              f"{float((bone | ndi.binary_fill_holes(bone))[m].mean()) if m.any() else float('nan'):.3f} |")
        if png:
            overlay2d(png / f"ct_small_{name}.png", a, m, name)
    print("lung-ct finds nothing here by design: both lungs touch this cropped slice's border, and air touching"
          " the border is taken for the air outside the body.")


def overlay2d(path: Path, a: np.ndarray, m: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(a, cmap="gray", vmin=-1000, vmax=1000)
    rgba = np.zeros(a.shape + (4,))
    rgba[find_boundaries(m)] = (1, 0, 0, 1)
    ax.imshow(rgba)
    ax.set_title(title)
    ax.axis("off")
    fig.savefig(path, dpi=60)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--png", type=Path, help="write overlay PNGs here")
    ap.add_argument("--repeat", type=int, default=1, help="time each contender best of N")
    args = ap.parse_args(argv)
    from medseg.io import read_image
    from medseg.recipes import Recipe, get_recipe
    from medseg.testing import shared_data

    root = shared_data()
    if root is None:
        print("../shared/data not found: nothing to measure")
        return 0
    logging.basicConfig(level=logging.WARNING, format="  %(name)s: %(message)s")
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    expectations_table(root)
    ct_section(args.png)
    contenders = {"brain-mask": get_recipe("brain-mask"),
                  "brain-mask, no depth floor": get_recipe("brain-mask", ["--min-depth", "0"]),
                  "previous recipe": Recipe.from_dict(OLD_BRAIN_MASK).build(),
                  "skimage Otsu+LCC": plain_otsu}
    print(f"\n## brain-mask on real T1 (scalp shell: {SHELL_MM:g} mm under the skin)\n")
    print("| volume | contender | tumour coverage | scalp leak | worst slice | volume ml | mask/head | s |")
    print("|---|---|---|---|---|---|---|---|")
    rows: dict = {}
    for vol, (fi, fl) in VOLUMES.items():
        if not (root / fi).exists():
            print(f"| {vol} | (missing) |")
            continue
        img, lab = read_image(root / fi), read_image(root / fl)
        tumour = np.asarray(lab.array) > 0
        head = reference_head(np.asarray(img.array))
        depth = np.stack([ndi.distance_transform_edt(s, sampling=img.spacing[1:]) for s in head])
        shell = head & (depth < SHELL_MM)
        for name, seg in contenders.items():
            best = np.inf
            for _ in range(max(1, args.repeat)):
                t0 = time.perf_counter()
                out = seg(img)
                best = min(best, time.perf_counter() - t0)
            m = np.asarray(out.array if hasattr(out, "array") else out) > 0
            if args.png:
                tag = name.split(",")[0].split()[0].lower() + ("-nofloor" if "floor" in name else "")
                overlay(args.png / f"{vol}_{tag}.png", img, m, tumour, shell, f"{vol} {name}")
            r = measures(m, tumour, head, shell, img.spacing)
            r["s"] = best
            rows[vol, name] = r
            print(f"| {vol} | {name} | {r['coverage']:.3f} | {r['leak']:.4f} | {r['leak_worst_slice']:.3f} | "
                  f"{r['ml']:.0f} | {r['ratio']:.3f} | {best:.2f} |", flush=True)
    if rows:
        print("\n## Ratios, brain-mask / previous recipe (same run)\n")
        print("| volume | scalp leak | tumour coverage | time |")
        print("|---|---|---|---|")
        for vol in VOLUMES:
            if (vol, "brain-mask") not in rows:
                continue
            new, old = rows[vol, "brain-mask"], rows[vol, "previous recipe"]
            leak = f"{new['leak'] / old['leak']:.3f}" if old["leak"] else "n/a"
            cov = f"{new['coverage'] / old['coverage']:.1f}" if old["coverage"] else f"{new['coverage']:.3f} vs 0"
            print(f"| {vol} | {leak} ({new['leak']:.4f} vs {old['leak']:.4f}) | {cov} | {new['s'] / old['s']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
