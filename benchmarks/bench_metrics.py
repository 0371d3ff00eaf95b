"""Speed of HD95, ASSD and NSD on 256^3 mask pairs: medseg vs MONAI, at equal values.

Usage::

    python benchmarks/bench_metrics.py [--size 256] [--repeat 3] [--threads 1]

For each of several mask pairs (a smooth organ-like blob and a perturbed prediction; a
thin-structure pair; a small lesion in a big volume) it times MONAI's
``compute_hausdorff_distance(percentile=95)``, ``compute_average_surface_distance(symmetric=True)``
and ``compute_surface_dice`` against medseg's ``hd95``, ``assd`` and ``nsd`` (each called
separately, like MONAI) and ``distance_metrics`` (all three from one pass), checks the
values agree (|diff| <= 1e-6 relative; MONAI rounds distances to float32) and prints the
best-of-``repeat`` times and ratios.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from scipy import ndimage as ndi


def _pairs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*(np.arange(n, dtype=np.float32) - n / 2,) * 3, indexing="ij", sparse=True)
    bump = ndi.zoom(rng.standard_normal((8, 8, 8)).astype(np.float32), n / 8, order=1)
    r = np.sqrt(zz ** 2 / 0.8 + yy ** 2 + xx ** 2 / 1.3)
    truth = r < n * 0.3 + 4 * bump
    noise = ndi.zoom(rng.standard_normal((16, 16, 16)).astype(np.float32), n / 16, order=1)
    pred = np.roll(r < n * 0.3 + 4 * bump + 2.5 * noise, 2, axis=2)
    yield "organ (r~0.3n, perturbed)", pred, truth
    f = ndi.gaussian_filter(rng.standard_normal((n // 2,) * 3).astype(np.float32), 2)
    vessels = ndi.zoom(np.abs(f) < 0.004, 2, order=0)  # ~6% of the volume, tube-like
    dropped = ndi.zoom(rng.random((16, 16, 16)) < 0.15, n / 16, order=0)  # missed branches
    g = ndi.gaussian_filter(rng.standard_normal((n // 2,) * 3).astype(np.float32), 2)
    spurious = ndi.zoom(np.abs(g) < 0.0007, 2, order=0)  # false-positive fragments
    yield "thin structures (~6% vessels)", (np.roll(vessels, 1, axis=2) & ~dropped) | spurious, vessels
    c = np.zeros((n, n, n), bool)
    c[n // 3:n // 3 + 12, n // 2:n // 2 + 15, n // 2:n // 2 + 10] = True
    yield "small lesion", np.roll(c, 3, axis=1), c


def _best(fn, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2,
                    help="threads each side may use (default 2: medseg splits large volumes over two threads; "
                         "MONAI's SciPy distance transform is single-threaded whatever this says). "
                         "--threads 1 compares single-threaded code")
    ap.add_argument("--tolerance", type=float, default=1.0)
    args = ap.parse_args()

    import monai
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    from medseg.metrics.distance import assd, distance_metrics, hd95, nsd

    torch.set_num_threads(args.threads)
    os.environ["MEDSEG_NUM_THREADS"] = str(args.threads)
    warnings.simplefilter("ignore")
    spacing = (2.0, 0.8, 0.8)
    tol = args.tolerance
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
          f"threads={args.threads}; MONAI {monai.__version__}; size {args.size}^3, spacing {spacing}, "
          f"NSD tolerance {tol} mm")
    worst = np.inf
    for name, pred, truth in _pairs(args.size):
        tp = torch.as_tensor(pred[None, None].astype(np.float32))
        tt = torch.as_tensor(truth[None, None].astype(np.float32))
        pi, ti = pred.astype(np.uint8), truth.astype(np.uint8)
        # each callable binds this pair's arrays (default arguments), not the loop variables
        monai_fns = {
            "hd95": lambda tp=tp, tt=tt: compute_hausdorff_distance(
                tp, tt, include_background=True, percentile=95, spacing=spacing).item(),
            "assd": lambda tp=tp, tt=tt: compute_average_surface_distance(
                tp, tt, include_background=True, symmetric=True, spacing=spacing).item(),
            "nsd": lambda tp=tp, tt=tt: compute_surface_dice(
                tp, tt, [tol], include_background=True, spacing=spacing).item(),
        }
        ours_fns = {
            "hd95": lambda pi=pi, ti=ti: hd95(pi, ti, spacing=spacing),
            "assd": lambda pi=pi, ti=ti: assd(pi, ti, spacing=spacing),
            "nsd": lambda pi=pi, ti=ti: nsd(pi, ti, spacing=spacing, tolerance=tol),
        }
        print(f"\n{name}: |pred|={int(pred.sum())} |truth|={int(truth.sum())}")
        total_m = 0.0
        for k in ("hd95", "assd", "nsd"):
            tm, vm = _best(monai_fns[k], args.repeat)
            to, vo = _best(ours_fns[k], args.repeat)
            ok = np.isclose(vo, vm, rtol=1e-6, atol=1e-6)
            total_m += tm
            worst = min(worst, tm / to)
            print(f"  {k:5s} MONAI {tm:7.3f} s  medseg {to:7.3f} s  ratio {tm / to:6.1f}x  "
                  f"values {vm:.6f} vs {vo:.6f} {'equal' if ok else 'DIFFERENT'}")
        tall, vals = _best(lambda pi=pi, ti=ti: distance_metrics(pi, ti, spacing=spacing, tolerance=tol), args.repeat)
        print(f"  all three: MONAI {total_m:7.3f} s (3 calls)  medseg distance_metrics {tall:7.3f} s  "
              f"ratio {total_m / tall:6.1f}x")
    print(f"\nsmallest per-metric ratio: {worst:.1f}x")


if __name__ == "__main__":
    main()
