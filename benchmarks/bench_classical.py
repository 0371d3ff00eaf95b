"""Classical methods: wrapper overhead vs the underlying libraries, and 256^3 Otsu + largest
component.

For each case the same work is timed through medseg (``medseg.segment``: input checks,
channel handling, post-processing, label Image on the input grid) and by calling
scikit-image/SciPy/SimpleITK directly; the best of N repeats is compared (ratio =
medseg / direct; the issue asks for <= 1.10).

Usage: python benchmarks/bench_classical.py [--repeats N] [--size 256]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi


def best_pair(ours, theirs, repeats: int) -> tuple[float, float]:
    """Best-of-N times of two callables, run alternately so load drift hits both alike."""
    ours(), theirs()  # warm-up (imports, caches)
    t_ours, t_theirs = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, t_ours), (theirs, t_theirs)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    return min(t_ours), min(t_theirs)


def direct_otsu_largest(a: np.ndarray) -> np.ndarray:
    from skimage.filters import threshold_otsu

    m = a > threshold_otsu(a)
    lab, _ = ndi.label(m)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == sizes.argmax()


def direct_region_growing(a: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(a.astype(np.float32))
    out = sitk.ConfidenceConnected(img, seedList=[seed[::-1]], numberOfIterations=4, multiplier=2.5,
                                   initialNeighborhoodRadius=1, replaceValue=1)
    return sitk.GetArrayFromImage(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()

    from skimage.filters import threshold_li, threshold_otsu
    from skimage.segmentation import morphological_chan_vese

    from medseg.methods.base import segment
    from medseg.testing import disc_phantom

    img2, _ = disc_phantom((1024, 1024), seed=0)
    img3, _ = disc_phantom((128, 128, 128), seed=0, n_objects=6, noise=0.1)
    a2, a3 = img2.array, img3.array
    seed3 = tuple(int(v) for v in np.unravel_index(np.argmax(ndi.gaussian_filter(a3, 3)), a3.shape))
    small, _ = disc_phantom((128, 128), seed=0)
    cases = [
        ("otsu 2D 1024^2", lambda: segment(img2, "otsu"), lambda: (a2 > threshold_otsu(a2)).view(np.uint8)),
        ("otsu 3D 128^3", lambda: segment(img3, "otsu"), lambda: (a3 > threshold_otsu(a3)).view(np.uint8)),
        ("li 3D 128^3", lambda: segment(img3, "li"), lambda: (a3 > threshold_li(a3)).view(np.uint8)),
        ("otsu+largest 3D 128^3", lambda: segment(img3, "otsu", keep_largest=1),
         lambda: direct_otsu_largest(a3).view(np.uint8)),
        ("region-growing 3D 128^3 (1 seed)",
         lambda: segment(img3, "region-growing", seeds=",".join(map(str, seed3))),
         lambda: direct_region_growing(a3, seed3)),
        ("chan-vese 2D 128^2 (no Otsu init)",
         lambda: segment(small, "chan-vese", iterations=60),
         lambda: morphological_chan_vese(small.array, 60, init_level_set=small.array > threshold_otsu(small.array))),
    ]
    print(f"{'case':<36} {'medseg s':>9} {'direct s':>9} {'ratio':>6}")
    for name, ours, theirs in cases:
        t_ours, t_direct = best_pair(ours, theirs, args.repeats)
        print(f"{name:<36} {t_ours:9.4f} {t_direct:9.4f} {t_ours / t_direct:6.3f}", flush=True)

    n = args.size
    vol, _ = disc_phantom((n, n, n), seed=0, n_objects=4, noise=0.1)
    t0 = time.perf_counter()
    out = segment(vol, "otsu", keep_largest=1)
    t_first = time.perf_counter() - t0
    t_ours, t_direct = best_pair(lambda: segment(vol, "otsu", keep_largest=1),
                                 lambda: direct_otsu_largest(vol.array), args.repeats)
    same = np.array_equal(out.array > 0, direct_otsu_largest(vol.array))
    print(f"\n{n}^3 Otsu + largest component: medseg {t_ours:.3f} s (first call {t_first:.3f} s), "
          f"skimage+scipy direct {t_direct:.3f} s, ratio {t_ours / t_direct:.3f}, identical result: {same}, "
          f"under 3 s: {t_ours < 3.0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
