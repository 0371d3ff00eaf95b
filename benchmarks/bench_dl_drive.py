"""DRIVE (2D, RGB fundus): medseg's self-configured U-Net vs the plain MONAI loop.

For each requested fold of a 5-fold split (medseg's seeded split, shared by both), trains

* medseg: ``train_model`` with ``--time-budget`` (default self-configuration), and
* plain: the 40-line MONAI loop of issue 8 — UNet 16-32-64-128 with residual units,
  random 128x128 patches, batch 8, flips/rot90, Dice+CE, AdamW 2e-3 with poly decay —
  for the same wall-clock time,

then reports F1 (Dice of vessels) inside the FOV on the held-out images, and the minutes
each needed to first reach F1 0.80 on the held-out images (medseg: from its validation
log, whose time counts against its budget; plain: evaluated every --eval-every seconds,
evaluation time excluded from its clock).

``--holdout`` scores both on images neither ever saw: the fold's held-out images are
removed from medseg's dataset, so medseg's own validation split (which picks its checkpoint,
inference window, post-processing and temperature) comes from the other 16 images, as it
would for a user who then predicts new data; the plain loop trains on the same 16. Without
``--holdout`` medseg validates on the very images it is scored on (its cross-validation
figure, optimistic with 4 images). ``--variant NAME:key=value,...`` adds medseg runs with
other ``TrainConfig`` options (e.g. ``--variant ema:ema=on --variant all:ema=on,folds=1``).

Usage::

    python benchmarks/bench_dl_drive.py --budget 20 --folds 0,1,2,3,4
    python benchmarks/bench_dl_drive.py --budget 4 --folds 0          # quick check
    python benchmarks/bench_dl_drive.py --budget 4 --folds 0 --holdout --variant ema:ema=on
"""
from __future__ import annotations

import argparse
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


def drive_dataset():
    root = shared_data("DRIVE", "training")
    if root is None:
        sys.exit("DRIVE not found under ../shared/data; nothing to benchmark")
    return load_dataset(images=root / "images", labels=root / "1st_manual", roi=root / "mask")


def f1_scores(preds, truths, rois) -> tuple[float, float]:
    """Mean per-image F1 in the FOV, and F1 pooled over all FOV pixels."""
    per = [dice(p, t, label=1, roi=r) for p, t, r in zip(preds, truths, rois)]
    tp = sum(int(((p == 1) & (t == 1) & r).sum()) for p, t, r in zip(preds, truths, rois))
    s = sum(int(((p == 1) & r).sum()) + int(((t == 1) & r).sum()) for p, t, r in zip(preds, truths, rois))
    return float(np.mean(per)), 2 * tp / max(s, 1)


def load_cases(ds, ids):
    out = []
    by = {c.case_id: c for c in ds.cases}
    for cid in ids:
        img = ds.load_image(by[cid])
        out.append((img, ds.load_label(by[cid], img).array.astype(np.int64), ds.load_roi(by[cid], img).array > 0))
    return out


# ------------------------------------------------------------------------------ plain loop
def plain_loop(train, val, budget_s: float, seed: int, eval_every: float, max_steps: int | None = None,
               device: str = "cpu", net_factory=None) -> dict:
    """The plain loop of issue 8; ``net_factory()`` replaces its network (throughput
    comparisons on the very same network)."""
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceCELoss
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = (net_factory() if net_factory is not None else
           UNet(spatial_dims=2, in_channels=3, out_channels=2, channels=(16, 32, 64, 128), strides=(2, 2, 2),
                num_res_units=2)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    xs = [img.array.astype(np.float32) / 255.0 for img, _, _ in train]
    ys = [lab for _, lab, _ in train]

    def evaluate():
        if not val:
            return float("nan"), float("nan")
        net.eval()
        preds = []
        with torch.no_grad():
            for img, _, _ in val:
                x = torch.from_numpy(img.array.astype(np.float32) / 255.0)[None].to(device)
                preds.append(sliding_window_inference(x, (128, 128), 8, net).argmax(1)[0].cpu().numpy())
        net.train()
        return f1_scores(preds, [v[1] for v in val], [v[2] for v in val])

    t_train, steps, first80, curve, next_eval = 0.0, 0, None, [], eval_every
    net.train()
    while t_train < budget_s and (max_steps is None or steps < max_steps):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = 2e-3 * (1 - t_train / budget_s) ** 0.9
        bx, by = [], []
        for _ in range(8):
            i = int(rng.integers(len(xs)))
            h, w = ys[i].shape
            y0, x0 = int(rng.integers(h - 128)), int(rng.integers(w - 128))
            x = xs[i][:, y0:y0 + 128, x0:x0 + 128]
            y = ys[i][y0:y0 + 128, x0:x0 + 128][None]
            if rng.random() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            if rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, :, ::-1]
            k = int(rng.integers(4))
            x, y = np.rot90(x, k, (1, 2)), np.rot90(y, k, (1, 2))
            bx.append(np.ascontiguousarray(x))
            by.append(np.ascontiguousarray(y))
        opt.zero_grad()
        loss = loss_fn(net(torch.from_numpy(np.stack(bx)).to(device)), torch.from_numpy(np.stack(by)).to(device))
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        steps += 1
        t_train += time.perf_counter() - t0
        if t_train >= next_eval or t_train >= budget_s:
            next_eval += eval_every
            f1, _ = evaluate()
            curve.append((round(t_train / 60, 2), round(f1, 4)))
            if first80 is None and f1 >= 0.80:
                first80 = t_train / 60
    f1, pooled = evaluate()
    return {"f1": f1, "f1_pooled": pooled, "steps": steps, "samples_per_s": 8 * steps / t_train,
            "minutes_to_f1_080": first80, "curve": curve}


# ------------------------------------------------------------------------------ medseg
def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:key=value,...`` -> (NAME, TrainConfig overrides)."""
    import dataclasses

    from medseg.train import TrainConfig

    name, _, opts = text.partition(":")
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    kw = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        if k not in types:
            raise SystemExit(f"--variant {text}: {k} is not a TrainConfig field")
        kw[k] = int(v) if v.lstrip("-").isdigit() else float(v) if v.replace(".", "", 1).isdigit() else v
    return name, kw


def medseg_run(ds, fold: int, n_folds: int, budget_min: float, seed: int, out: Path, val,
               device: str = "auto", options: dict | None = None) -> dict:
    from medseg.methods.base import load_model
    from medseg.methods.dl import train_unet as train_model
    from medseg.train import TrainConfig

    opts = {"folds": n_folds, "fold": str(fold), **(options or {})}
    cfg = TrainConfig(time_budget=budget_min, seed=seed, progress=False, device=device, **opts)
    t0 = time.perf_counter()
    info = train_model(ds, out, cfg)
    wall = time.perf_counter() - t0
    # one fold, or every fold of ``--fold all`` (an ensemble): steps and seconds summed, curve of the first
    logs = [json.loads(p.read_text()) for p in sorted(out.glob("fold_*/log.json"))]
    log = logs[0]
    first80 = next((h["elapsed_s"] / 60 for h in log["history"] if h.get("val_dice", 0) >= 0.80), None)
    seg = load_model(out)
    preds = [seg(img).array for img, _, _ in val]
    f1, pooled = f1_scores(preds, [v[1] for v in val], [v[2] for v in val])
    plan = info["plan"]
    steps = sum(lg["steps"] for lg in logs)
    train_s = sum(lg["history"][-1].get("train_s", lg["elapsed_s"]) for lg in logs)
    return {"f1": f1, "f1_pooled": pooled, "steps": steps, "wall_s": round(wall, 1), "models": len(logs),
            "samples_per_s": plan["batch_size"] * steps / max(train_s, 1e-6),
            "minutes_to_f1_080": first80,
            "curve": [(round(h["elapsed_s"] / 60, 2), round(h["val_dice"], 4)) for h in log["history"] if "val_dice" in h],
            "plan": {k: plan[k] for k in ("patch_size", "batch_size", "channels", "step_seconds")}}


def main() -> None:
    from medseg.dl.folds import parse_folds
    from medseg.train.engine import make_splits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=20.0, help="minutes per fold for each contender")
    ap.add_argument("--folds", default="0", help="folds to run: e.g. 0,1 or all")
    ap.add_argument("--n-folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=float, default=60.0, help="plain loop: seconds between evaluations")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--skip-medseg", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu (the issue's setting) or cuda, for both contenders")
    ap.add_argument("--out", default=None, help="folder for models and results.json (default: a temp folder)")
    ap.add_argument("--holdout", action="store_true",
                    help="score on images medseg never saw (its validation split comes from the training images)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:key=value,...",
                    help="another medseg run with these TrainConfig options (repeatable)")
    a = ap.parse_args()
    variants = [parse_variant(v) for v in a.variant]
    if a.threads:
        torch.set_num_threads(a.threads)
    ds = drive_dataset()
    splits = make_splits([c.case_id for c in ds.cases], a.n_folds, a.seed)
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_dl_drive_"))
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else (platform.processor() or platform.machine())
    print(f"# DRIVE 5-fold, budget {a.budget} min, device {a.device}, torch threads {torch.get_num_threads()}, {dev}"
          + (", held-out images unseen by medseg's validation" if a.holdout else ""))
    results = {}
    for k in parse_folds(a.folds, a.n_folds):
        val = load_cases(ds, splits[k]["val"])
        train = load_cases(ds, splits[k]["train"])
        r = {}
        runs = ([("medseg", {})] if not a.skip_medseg else []) + variants
        for name, opts in runs:
            if a.holdout:  # medseg sees only the training images; its own split validates
                import dataclasses

                keep = set(splits[k]["train"])
                sub = dataclasses.replace(ds, cases=[c for c in ds.cases if c.case_id in keep])
                opts = {"fold": "0", **opts}
                r[name] = medseg_run(sub, 0, a.n_folds, a.budget, a.seed, out / f"{name}_fold{k}", val,
                                     device=a.device, options=opts)
            else:
                r[name] = medseg_run(ds, k, a.n_folds, a.budget, a.seed, out / f"{name}_fold{k}", val,
                                     device=a.device, options=opts)
        if not a.skip_plain:
            r["plain"] = plain_loop(train, val, a.budget * 60, a.seed, a.eval_every, device=a.device)
        results[k] = r
        for name, v in r.items():
            print(f"fold {k} {name:8s} F1(FOV) {v['f1']:.4f} pooled {v['f1_pooled']:.4f} steps {v['steps']} "
                  f"samples/s {v['samples_per_s']:.1f} min->0.80 {v['minutes_to_f1_080']}", flush=True)
        for name in r:
            if name != "plain" and "plain" in r:
                print(f"fold {k} {name} - plain: {r[name]['f1'] - r['plain']['f1']:+.4f}")
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    for name in ["medseg", *(v[0] for v in variants), "plain"]:
        f = [r[name]["f1"] for r in results.values() if name in r]
        if f:
            print(f"mean F1 {name}: {np.mean(f):.4f} over {len(f)} fold(s)")
    print(f"results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
