"""Transfer, few-shot and adversarial training on DRIVE, each against its plain counterpart in the same run.

The 20 DRIVE training images, sorted by name, are split once: the last 4 are scored (F1 of
vessels inside the FOV), never trained on.

* ``--part transfer``: a U-Net is pretrained on the first 14 images; then on 2 other labelled
  images (images 15-16) one model is fine-tuned from it with ``--init-from`` (the few-shot
  schedule switches on: 2 cases) and one is trained from scratch, with the same number of
  steps; both are scored on the 4.
* ``--part adversarial``: on the first 16 images, the plain U-Net and the same with
  ``--adversarial`` train for the same number of steps; both are scored on the 4.

Steps, not minutes, are held equal: on a shared machine a time budget buys a varying number of
steps; the wall time of each run is printed beside it.

Usage::

    python benchmarks/bench_transfer.py --part all
    python benchmarks/bench_transfer.py --part transfer --pretrain-steps 800 --steps 400
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medseg.io import load_dataset
from medseg.metrics import dice
from medseg.testing import shared_data


def drive():
    root = shared_data("DRIVE", "training")
    if root is None:
        sys.exit("DRIVE not found under ../shared/data; nothing to benchmark")
    return load_dataset(images=root / "images", labels=root / "1st_manual", roi=root / "mask")


def subset(ds, ids):
    by = {c.case_id: c for c in ds.cases}
    return dataclasses.replace(ds, cases=[by[i] for i in ids])


def score(model: Path, ds, ids) -> float:
    from medseg.methods.base import load_model

    seg = load_model(model)
    by = {c.case_id: c for c in ds.cases}
    f1 = []
    for cid in ids:
        img = ds.load_image(by[cid])
        truth = ds.load_label(by[cid], img).array
        roi = ds.load_roi(by[cid], img).array > 0
        f1.append(dice(seg(img).array, truth, label=1, roi=roi))
    return float(np.mean(f1))


def train(ds, out: Path, steps: int, seed: int, **options) -> dict:
    from medseg.methods.dl import train_unet
    from medseg.train import TrainConfig

    ipe = 50
    cfg = TrainConfig(folds=1, epochs=max(1, steps // ipe), iters_per_epoch=ipe, seed=seed, progress=False,
                      device="cpu", **options)
    t0 = time.perf_counter()
    info = train_unet(ds, out, cfg)
    return {"wall_s": round(time.perf_counter() - t0, 1), "plan": {k: info["plan"][k] for k in
                                                                   ("net", "channels", "patch_size", "batch_size",
                                                                    "lr", "aug_strength")},
            "few_shot": info.get("few_shot")}


def part_transfer(ds, ids, work: Path, a) -> dict:
    pre, few, test = ids[:14], ids[14:16], ids[16:20]
    t = train(subset(ds, pre), work / "pretrained", a.pretrain_steps, a.seed)
    print(f"pretrained on {len(pre)} images, {a.pretrain_steps} steps, {t['wall_s']} s", flush=True)
    res = {"pretrain": t, "cases": {"pretrain": pre, "few": few, "test": test}}
    # the same architecture for both arms: the scratch run uses the pretrained plan's widths
    ft = train(subset(ds, few), work / "finetuned", a.steps, a.seed, init_from=str(work / "pretrained"))
    sc = train(subset(ds, few), work / "scratch", a.steps, a.seed, channels=tuple(t["plan"]["channels"]),
               net=t["plan"]["net"])
    res["finetuned"] = {**ft, "f1": score(work / "finetuned", ds, test)}
    res["scratch"] = {**sc, "f1": score(work / "scratch", ds, test)}
    res["pretrained_only_f1"] = score(work / "pretrained", ds, test)
    print(f"2 labelled images, {a.steps} steps: fine-tuned F1 {res['finetuned']['f1']:.4f} "
          f"({ft['wall_s']} s) vs from scratch {res['scratch']['f1']:.4f} ({sc['wall_s']} s): "
          f"{res['finetuned']['f1'] / max(res['scratch']['f1'], 1e-9):.2f}x; the pretrained model alone "
          f"{res['pretrained_only_f1']:.4f}", flush=True)
    return res


def part_adversarial(ds, ids, work: Path, a) -> dict:
    tr, test = ids[:16], ids[16:20]
    p = train(subset(ds, tr), work / "plain", a.adv_steps, a.seed)
    v = train(subset(ds, tr), work / "adversarial", a.adv_steps, a.seed, adversarial=True)
    res = {"plain": {**p, "f1": score(work / "plain", ds, test)},
           "adversarial": {**v, "f1": score(work / "adversarial", ds, test)}}
    print(f"16 images, {a.adv_steps} steps: adversarial F1 {res['adversarial']['f1']:.4f} ({v['wall_s']} s) vs "
          f"plain {res['plain']['f1']:.4f} ({p['wall_s']} s): "
          f"{res['adversarial']['f1'] / max(res['plain']['f1'], 1e-9):.3f}x", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("transfer", "adversarial", "all"), default="all")
    ap.add_argument("--pretrain-steps", type=int, default=800)
    ap.add_argument("--steps", type=int, default=300, help="steps of each few-shot arm")
    ap.add_argument("--adv-steps", type=int, default=600, help="steps of each adversarial-part arm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="folder for the models and results.json")
    a = ap.parse_args()
    ds = drive()
    ids = sorted(c.case_id for c in ds.cases)
    work = Path(a.out or tempfile.mkdtemp(prefix="bench_transfer_"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
                 "torch": torch.__version__}
    if a.part in ("transfer", "all"):
        res["transfer"] = part_transfer(ds, ids, work / "transfer", a)
    if a.part in ("adversarial", "all"):
        res["adversarial"] = part_adversarial(ds, ids, work / "adversarial", a)
    (work / "results.json").write_text(json.dumps(res, indent=1))
    print(f"results in {work / 'results.json'}")


if __name__ == "__main__":
    main()
