"""MSD Hippocampus (3D MR, 2 classes): medseg's self-configured U-Net vs a plain MONAI 3D loop.

For each requested fold of a 5-fold split (medseg's seeded split, shared by both), trains

* medseg: ``train_model`` with ``--time-budget`` (default self-configuration), and
* plain: the loop of issue 8 — MONAI UNet 16-32-64-128 with residual units on whole
  volumes zero-padded to 48x64x48, batch 4, Dice+CE, AdamW 2e-3 with poly decay,
  per-volume z-score — for the same wall-clock time,

and prints the mean Dice over the two classes (anterior, posterior) on the held-out cases.

``--holdout`` keeps the fold's held-out cases out of medseg's dataset (its own validation
split then comes from the training cases, as for a user predicting new data) and
``--variant NAME:key=value,...`` adds medseg runs with other ``TrainConfig`` options, as in
``bench_dl_drive.py``.

Usage::

    python benchmarks/bench_dl_hippocampus.py --budget 15 --folds 0,1,2,3,4
    python benchmarks/bench_dl_hippocampus.py --budget 4 --folds 0 --holdout --variant ema:ema=on
    python benchmarks/bench_dl_hippocampus.py --budget 4 --folds 0      # quick check
    python benchmarks/bench_dl_hippocampus.py --budget 2 --folds 0 --device cuda   # both on a GPU
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medseg.io import load_dataset
from medseg.metrics import dice
from medseg.testing import shared_data

PAD = (48, 64, 48)


def mean_dice(preds, truths) -> tuple[float, list[float]]:
    per_class = [[dice(p, t, label=c) for p, t in zip(preds, truths)] for c in (1, 2)]
    per_class = [float(np.nanmean(v)) for v in per_class]
    return float(np.mean(per_class)), per_class


def load_cases(ds, ids):
    by = {c.case_id: c for c in ds.cases}
    out = []
    for cid in ids:
        img = ds.load_image(by[cid])
        out.append((img, ds.load_label(by[cid], img).array.astype(np.int64)))
    return out


def _pad(a: np.ndarray, value: float = 0.0) -> tuple[np.ndarray, tuple[slice, ...]]:
    shape = a.shape[-3:]
    if any(s > p for s, p in zip(shape, PAD)):
        raise SystemExit(f"volume {shape} larger than {PAD}")
    out = np.full(a.shape[:-3] + PAD, value, dtype=a.dtype)
    sl = tuple(slice(0, s) for s in shape)
    out[(...,) + sl] = a
    return out, sl


def plain_loop(train, val, budget_s: float, seed: int, device: str = "cpu") -> dict:
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = UNet(spatial_dims=3, in_channels=1, out_channels=3, channels=(16, 32, 64, 128), strides=(2, 2, 2),
               num_res_units=2).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def norm(img):
        a = img.array.astype(np.float32)
        return (a - a.mean()) / max(float(a.std()), 1e-6)

    xs = [_pad(norm(img)[None])[0] for img, _ in train]
    ys = [_pad(lab[None])[0] for _, lab in train]
    t_train, steps = 0.0, 0
    net.train()
    while t_train < budget_s:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = 2e-3 * (1 - t_train / budget_s) ** 0.9
        idx = rng.integers(len(xs), size=4)
        x = torch.from_numpy(np.stack([xs[i] for i in idx]))
        y = torch.from_numpy(np.stack([ys[i] for i in idx]))
        opt.zero_grad()
        loss = loss_fn(net(x.to(device)), y.to(device))
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        steps += 1
        t_train += time.perf_counter() - t0
    net.eval()
    preds = []
    with torch.no_grad():
        for img, _ in val:
            x, sl = _pad(norm(img)[None])
            p = net(torch.from_numpy(x)[None].to(device)).argmax(1)[0].cpu().numpy()
            preds.append(p[sl])
    md, per = mean_dice(preds, [v[1] for v in val])
    return {"dice": md, "per_class": per, "steps": steps, "samples_per_s": 4 * steps / t_train}


def medseg_run(ds, fold, n_folds, budget_min, seed, out: Path, val, device: str = "cpu",
               options: dict | None = None) -> dict:
    from medseg.methods.base import load_model
    from medseg.methods.dl import train_unet as train_model
    from medseg.train import TrainConfig

    t0 = time.perf_counter()
    opts = {"folds": n_folds, "fold": str(fold), **(options or {})}
    cfg = TrainConfig(time_budget=budget_min, seed=seed, progress=False, device=device, **opts)
    info = train_model(ds, out, cfg)
    wall = time.perf_counter() - t0
    log = json.loads((out / f"fold_{cfg.fold}" / "log.json").read_text())
    seg = load_model(out)
    t1 = time.perf_counter()
    preds = [seg(img).array for img, _ in val]
    md, per = mean_dice(preds, [v[1] for v in val])
    plan = info["plan"]
    return {"dice": md, "per_class": per, "steps": log["steps"], "wall_s": round(wall, 1),
            "predict_s_per_case": round((time.perf_counter() - t1) / len(val), 3),
            "samples_per_s": plan["batch_size"] * log["steps"] / max(log["history"][-1].get("train_s", log["elapsed_s"]), 1e-6),
            "plan": {k: plan[k] for k in ("patch_size", "batch_size", "channels", "step_seconds")}}


def main() -> None:
    from medseg.dl.folds import parse_folds
    from medseg.train.engine import make_splits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=15.0, help="minutes per fold for each contender")
    ap.add_argument("--folds", default="0")
    ap.add_argument("--n-folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--skip-medseg", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--device", default="cpu", help="cpu (the issue's setting) or cuda, for both contenders")
    ap.add_argument("--holdout", action="store_true",
                    help="score on cases medseg never saw (its validation split comes from the training cases)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                    help="another medseg run with these TrainConfig options (repeatable)")
    a = ap.parse_args()
    from bench_dl_drive import parse_variant

    variants = [parse_variant(v) for v in a.variant]
    if a.threads:
        torch.set_num_threads(a.threads)
    root = shared_data("Hippocampus")
    if root is None:
        sys.exit("Hippocampus not found under ../shared/data; nothing to benchmark")
    ds = load_dataset(root)
    splits = make_splits([c.case_id for c in ds.cases], a.n_folds, a.seed)
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_dl_hippo_"))
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu"
    print(f"# Hippocampus 5-fold, budget {a.budget} min, device {dev}, torch threads {torch.get_num_threads()}"
          + (", held-out cases unseen by medseg's validation" if a.holdout else ""))
    results = {}
    for k in parse_folds(a.folds, a.n_folds):
        val = load_cases(ds, splits[k]["val"])
        r = {}
        for name, opts in ([("medseg", {})] if not a.skip_medseg else []) + variants:
            if a.holdout:  # medseg sees only the training cases; its own split validates
                import dataclasses

                keep = set(splits[k]["train"])
                sub = dataclasses.replace(ds, cases=[c for c in ds.cases if c.case_id in keep])
                r[name] = medseg_run(sub, 0, a.n_folds, a.budget, a.seed, out / f"{name}_fold{k}", val,
                                     device=a.device, options={"fold": "0", **opts})
            else:
                r[name] = medseg_run(ds, k, a.n_folds, a.budget, a.seed, out / f"{name}_fold{k}", val,
                                     device=a.device, options=opts)
        if not a.skip_plain:
            r["plain"] = plain_loop(load_cases(ds, splits[k]["train"]), val, a.budget * 60, a.seed, a.device)
        results[k] = r
        for name, v in r.items():
            print(f"fold {k} {name:8s} mean Dice {v['dice']:.4f} (ant {v['per_class'][0]:.4f}, post "
                  f"{v['per_class'][1]:.4f}) steps {v['steps']} samples/s {v['samples_per_s']:.2f}", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    for name in ["medseg", *(v[0] for v in variants), "plain"]:
        d = [r[name]["dice"] for r in results.values() if name in r]
        if d:
            print(f"mean Dice {name}: {np.mean(d):.4f} over {len(d)} fold(s)")
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
