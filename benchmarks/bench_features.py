"""Feature-stack speed and memory: medseg vs scikit-image ``multiscale_basic_features``.

Both compute intensity, edges (gradient magnitude) and Hessian-eigenvalue texture at the
same scales on the same image; medseg's scales are physical and the stack is computed in
blocks when a memory bound is given. Prints times, the ratio medseg / scikit-image, and
the peak traced memory of medseg's stack with and without a block bound on a 3D volume.

Usage::

    python benchmarks/bench_features.py [--size 512] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import time
import tracemalloc


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    from skimage.feature import multiscale_basic_features

    from medseg.features import FeatureConfig, feature_stack
    from medseg.testing import disc_phantom

    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs (shared with other users: compare ratios, not absolute times)")
    sig = (1.0, 2.0, 4.0, 8.0)
    cfg = FeatureConfig(features=("intensity", "gradient", "hessian"), sigmas=sig, normalise="none")
    for shape in [(args.size, args.size), (48, 128, 128)]:
        img, _ = disc_phantom(shape, seed=0)
        a = img.array

        def sk():
            return multiscale_basic_features(a, intensity=True, edges=True, texture=True, sigma_min=1,
                                             sigma_max=8, num_sigma=4)

        def ms():
            return feature_stack(img, cfg)

        f_sk, (f_ms, _) = sk(), ms()
        t_sk, t_ms = best_of(sk, args.repeat), best_of(ms, args.repeat)
        print(f"{'x'.join(map(str, shape)):>12}: skimage {t_sk:.3f} s ({f_sk.shape[-1]} features)  "
              f"medseg {t_ms:.3f} s ({f_ms.shape[0]} features)  ratio medseg/skimage {t_ms / t_sk:.2f}")
    img, _ = disc_phantom((64, 192, 192), seed=0)
    for bound in (None, 256.0):
        tracemalloc.start()
        t = time.perf_counter()
        if bound is None:
            feature_stack(img, cfg, max_memory_mb=1e6)
        else:
            from medseg.features import iter_feature_blocks

            for _ in iter_feature_blocks(img, cfg, max_memory_mb=bound):
                pass
        dt = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        what = "whole stack" if bound is None else f"blocks, bound {bound:g} MB"
        print(f"64x192x192 {what:>22}: {dt:.2f} s, peak traced memory {peak:.0f} MB")


if __name__ == "__main__":
    main()
