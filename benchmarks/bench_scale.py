"""Scale: cases per second of folder inference with the local engine and with Ray (1 and 2 workers).

One folder of 2D phantom images (``--cases``, ``--size``) and one tiny 2D ``unet`` model
(trained here for a few steps, or ``--model``); each contender is the ``medseg predict``
command in its own process, timed end to end (Ray's start-up included: what a user waits)
and in its steady state (cases finished per second between the first and the last output
written, from their modification times). Every Ray run's outputs are checked to equal the
local run's, file for file.

Usage::

    python benchmarks/bench_scale.py                       # --part inference (the default)
    python benchmarks/bench_scale.py --cases 48 --size 384

``--part training`` measures distributed training: the same ``medseg train`` (2D phantom
discs, a fixed plan: patch 128², global batch 4, widths 16-32-64-128, ``--iters-per-epoch``
steps, torch.compile off) in one process and with ``--nproc 2`` (gloo, the batch split 2+2),
as training samples per second from each run's ``log.json`` (training time only, start-up
and validation excluded), and the ratio. On a 2-core CPU two processes share the same cores,
so no speed-up is expected there; on a multi-core or multi-GPU machine run it with
``--nproc N``.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent


def _tiny_2d_model(root: Path) -> str:
    from medseg.io import load_dataset
    from medseg.methods.dl import train_unet
    from medseg.testing import make_dataset
    from medseg.train import TrainConfig

    data = make_dataset(root / "data", kind="disc", n=4, shape=(128, 128))
    cfg = TrainConfig(epochs=1, folds=2, fold="0", iters_per_epoch=3, batch_size=2, channels=(8, 16, 32),
                      patch_size=(128, 128), progress=False, workers=1)
    train_unet(load_dataset(data), root / "model", cfg)
    return str(root / "model")


def _folder(root: Path, n: int, size: int) -> Path:
    from medseg.io import write_image
    from medseg.testing import disc_phantom

    for i in range(n):
        img, _ = disc_phantom((size, size), seed=i)
        write_image(img, root / f"case_{i:03d}.nii.gz")
    return root


def _run(cmd: list[str], out: Path, n: int) -> dict:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    total = time.perf_counter() - t
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    stamps = sorted(p.stat().st_mtime for p in out.glob("case_*.nii.gz"))
    steady = (n - 1) / max(stamps[-1] - stamps[0], 1e-9)
    return {"seconds": total, "cases_per_s": n / total, "steady_cases_per_s": steady}


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != "manifest.json"}


def inference(a: argparse.Namespace) -> dict[str, dict]:
    """Cases/s of ``medseg predict`` on one folder: local, ray x1, ray x2."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = a.model or _tiny_2d_model(root)
        src = _folder(root / "in", a.cases, a.size)
        base = [str(BIN / "medseg"), "predict", model, str(src)]
        opts = ["--no-tta", "--compile", "off", "--device", "cpu", "--backend", "torch"]
        runs = {"local": [], "ray x1": ["--engine", "ray", "--workers", "1"],
                "ray x2": ["--engine", "ray", "--workers", "2"]}
        res: dict[str, dict] = {}
        for name, flags in runs.items():
            out = root / name.replace(" ", "_")
            res[name] = _run(base + [str(out)] + opts + flags, out, a.cases)
            print(f"{name:7s} {res[name]['seconds']:7.2f} s  {res[name]['cases_per_s']:6.2f} cases/s end to end  "
                  f"{res[name]['steady_cases_per_s']:6.2f} cases/s steady", flush=True)
            if name != "local" and _files(out) != _files(root / "local"):
                sys.exit(f"{name}: outputs differ from the local engine's")
    for name in ("ray x1", "ray x2"):
        print(f"{name} / local: x{res[name]['cases_per_s'] / res['local']['cases_per_s']:.2f} end to end, "
              f"x{res[name]['steady_cases_per_s'] / res['local']['steady_cases_per_s']:.2f} steady")
    print("outputs of both Ray runs equal the local run's, file for file")
    return res


def training(a: argparse.Namespace) -> dict[str, dict]:
    import json

    from medseg.testing import make_dataset

    root = Path(tempfile.mkdtemp(prefix="bench_scale_train_"))
    data = make_dataset(root / "data", kind="disc", n=8, shape=(256, 256))
    base = [str(BIN / "medseg"), "train", str(data), "--method", "unet", "--folds", "1", "--epochs", "1",
            "--iters-per-epoch", str(a.steps), "--patch-size", "128,128", "--batch-size", "4",
            "--channels", "16,32,64,128", "--compile", "off", "--no-progress", "-q"]
    res: dict[str, dict] = {}
    for n in (1, a.nproc):
        out = root / f"model_{n}"
        cmd = base + ["--out", str(out)] + (["--nproc", str(n)] if n > 1 else [])
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
        log = json.loads((out / "fold_0" / "log.json").read_text())
        train_s = log["history"][-1]["train_s"]
        res[str(n)] = {"processes": n, "steps": log["steps"], "train_s": train_s, "wall_s": round(wall, 1),
                       "samples_per_s": round(4 * log["steps"] / train_s, 2)}
        print(f"{n} process(es): {log['steps']} steps of global batch 4 in {train_s:.1f} s of training "
              f"({res[str(n)]['samples_per_s']} samples/s; {wall:.0f} s wall with start-up and validation)",
              flush=True)
    ratio = res[str(a.nproc)]["samples_per_s"] / res["1"]["samples_per_s"]
    print(f"{a.nproc} processes vs 1: {ratio:.2f}x samples/s")
    return res


PARTS = {"inference": inference, "training": training}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("inference", "training", "all"), default="inference")
    ap.add_argument("--cases", type=int, default=24, help="images in the folder")
    ap.add_argument("--size", type=int, default=256, help="image side (pixels)")
    ap.add_argument("--model", default=None, help="a 2D unet model folder (default: a tiny one trained here)")
    ap.add_argument("--steps", type=int, default=200, help="training: steps per run")
    ap.add_argument("--nproc", type=int, default=2, help="training: processes of the distributed run")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
          f"numpy {np.__version__}")
    parts = list(PARTS) if a.part == "all" else [a.part]
    for part in parts:
        if part not in PARTS:
            sys.exit(f"the {part} measurement is not part of this script yet")
        print(f"== {part}")
        PARTS[part](a)


if __name__ == "__main__":
    main()
