"""Anonymisation throughput: `medseg anonymize` vs dicognito on the same DICOM study.

Both read every file, de-identify it and write it (files/s, best of 3 runs each, same
machine, same run). medseg applies the DICOM PS3.15 Basic Profile table (438 attributes),
removes private attributes and replaces UIDs consistently; dicognito replaces names, UIDs,
dates and its list of identifying elements. Default data: the shared TCIA study
(../shared/data/TCIA-Brain-Tumor-Progression/PGBM-001, 6 series, 144 files).

Usage: python benchmarks/bench_anonymize.py [STUDY_DIR]   (needs `pip install dicognito`)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path


def _dicognito(files: list[Path], out: Path) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anon = Anonymizer()
    for i, f in enumerate(files):
        ds = pydicom.dcmread(str(f))
        anon.anonymize(ds)
        ds.save_as(str(out / f"{i:05d}.dcm"))


def main(*argv: str) -> int:
    from medseg.io.anonymize import anonymize
    from medseg.io.dicom import looks_like_dicom
    from medseg.testing import shared_data

    study = Path(argv[0]) if argv else shared_data("TCIA-Brain-Tumor-Progression/PGBM-001")
    if study is None or not Path(study).exists():
        print("no study: give STUDY_DIR or provide ../shared/data")
        return 2
    try:
        import dicognito  # noqa: F401
    except ImportError:
        print("the peer is missing: pip install dicognito")
        return 2
    files = sorted(p for p in Path(study).rglob("*") if p.is_file() and looks_like_dicom(p))
    tmp = Path(tempfile.mkdtemp())
    times: dict[str, list[float]] = {"medseg": [], "dicognito": []}
    try:
        for rep in range(3):
            for name in times:
                out = tmp / f"{name}{rep}"
                out.mkdir()
                t = time.perf_counter()
                if name == "medseg":
                    anonymize(study, out)
                else:
                    _dicognito(files, out)
                times[name].append(time.perf_counter() - t)
                shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = {k: len(files) / min(v) for k, v in times.items()}
    print(f"{len(files)} files of {study}")
    for k, v in rate.items():
        print(f"{k:<10} {v:8.1f} files/s  (best of 3: {min(times[k]):.2f} s)")
    print(f"ratio medseg/dicognito: {rate['medseg'] / rate['dicognito']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
