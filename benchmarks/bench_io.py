"""I/O benchmarks against peers, measured in the same run on the same files.

1. Dataset fingerprint of the 200-case Hippocampus MSD dataset: ``medseg.fingerprint``
   vs MONAI Auto3DSeg's ``DataAnalyzer`` (the peer that computes the same kind of
   dataset statistics for self-configuration), both on CPU.
2. Reading the six 24-slice TCIA DICOM series: ``medseg.io.read_image`` (pydicom) vs
   SimpleITK's ``ImageSeriesReader`` (GDCM), values and geometry checked equal.

Usage::

    python benchmarks/bench_io.py [--cases N] [--repeats R]

Prints one line per measurement and the ratio peer/medseg (>1: medseg faster).
"""
from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_fingerprint(n_cases: int, repeats: int) -> None:
    from medseg.fingerprint import fingerprint
    from medseg.io import load_dataset
    from medseg.testing import shared_data

    root = shared_data("Hippocampus")
    if root is None:
        print("fingerprint: Hippocampus data absent, skipped")
        return
    ds = load_dataset(root)
    ds.cases = ds.cases[:n_cases]
    t_ms = best_of(lambda: fingerprint(ds), repeats)

    from monai.apps.auto3dseg import DataAnalyzer

    datalist = {"training": [{"image": str(c.images[0]), "label": str(c.label)} for c in ds.cases]}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stats.yaml"
        dl = Path(tmp) / "datalist.json"
        dl.write_text(json.dumps(datalist))

        def peer():
            DataAnalyzer(str(dl), dataroot="", output_path=str(out), device="cpu", worker=0).get_all_case_stats()

        t_peer = best_of(peer, repeats)
    print(f"fingerprint  {n_cases} Hippocampus cases: medseg {t_ms:.2f} s, MONAI DataAnalyzer {t_peer:.2f} s, "
          f"ratio {t_peer / t_ms:.1f}x")


def bench_dicom(repeats: int) -> None:
    import SimpleITK as sitk

    from medseg.io import read_image
    from medseg.io.sitk import image_from_sitk
    from medseg.testing import shared_data

    root = shared_data("TCIA-Brain-Tumor-Progression", "PGBM-001")
    if root is None:
        print("dicom: TCIA data absent, skipped")
        return
    series = sorted(d for study in root.iterdir() if study.is_dir() for d in study.iterdir() if d.is_dir())

    def ours():
        return [read_image(d) for d in series]

    def peer():
        out = []
        for d in series:
            r = sitk.ImageSeriesReader()
            r.SetFileNames(r.GetGDCMSeriesFileNames(str(d)))
            out.append(image_from_sitk(r.Execute()))
        return out

    for a, b in zip(ours(), peer()):  # same answer first
        assert a.shape == b.shape and np.allclose(a.spacing, b.spacing) and np.allclose(a.origin, b.origin, atol=1e-4)
        assert np.allclose(a.array, b.array, atol=1e-3)
    t_ms, t_peer = best_of(ours, repeats), best_of(peer, repeats)
    print(f"dicom        {len(series)} series x 24 slices: medseg {t_ms:.3f} s, SimpleITK {t_peer:.3f} s, "
          f"ratio {t_peer / t_ms:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bench_dicom(args.repeats)
    bench_fingerprint(args.cases, args.repeats)


if __name__ == "__main__":
    main()
