"""Every ``--net`` at the same CPU budget: DRIVE (2D) and MSD Hippocampus (3D), with the plain
MONAI loop of ``bench_dl_drive.py`` / ``bench_dl_hippocampus.py`` as the peer.

For one fold of medseg's seeded split, each network that takes the data (``nets_for(dims)``)
is trained with ``medseg train --method unet --net NAME --time-budget B`` (self-configured:
patch, width and batch sized to the budget as for the U-Net) and scored on the held-out
cases (DRIVE: F1 inside the field of view; Hippocampus: mean Dice of the two classes); the
plain loop gets the same wall-clock budget. Prints one table row per contender: score, steps,
samples/s, parameters, seconds per case to predict.

Usage::

    python benchmarks/bench_nets.py --budget 10 --data drive            # ~10 min per network
    python benchmarks/bench_nets.py --budget 4 --data hippocampus --nets unet,r2unet,unet-convlstm
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_dl_drive as drive  # noqa: E402  (the peer loops and scoring of the two benchmarks)
import bench_dl_hippocampus as hippo  # noqa: E402
from medseg.io import load_dataset  # noqa: E402
from medseg.nets import net_info, nets_for  # noqa: E402
from medseg.testing import shared_data  # noqa: E402


def run_net(ds, name: str, fold: int, n_folds: int, budget_min: float, seed: int, out: Path, val, score) -> dict:
    """Train ``--net name`` for ``budget_min`` minutes on one fold; score it on ``val``."""
    from medseg.methods.base import load_model
    from medseg.methods.dl import train_unet
    from medseg.train import TrainConfig

    t0 = time.perf_counter()
    info = train_unet(ds, out, TrainConfig(time_budget=budget_min, folds=n_folds, fold=str(fold), seed=seed,
                                           net=name, progress=False, device="cpu"))
    wall = time.perf_counter() - t0
    log = json.loads((out / f"fold_{fold}" / "log.json").read_text())
    seg = load_model(out)
    t1 = time.perf_counter()
    preds = [seg(case[0]).array for case in val]
    pred_s = (time.perf_counter() - t1) / len(val)
    plan = info["plan"]
    train_s = max(log["history"][-1].get("train_s", log["elapsed_s"]), 1e-6) if log.get("history") else wall
    return {"score": score(preds, val), "steps": log["steps"], "wall_s": round(wall, 1),
            "samples_per_s": plan["batch_size"] * log["steps"] / train_s, "predict_s_per_case": round(pred_s, 3),
            "params": net_info(name).params, "plan": {k: plan[k] for k in ("patch_size", "batch_size", "channels")}}


def main() -> None:
    from medseg.train.engine import make_splits

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", choices=("drive", "hippocampus"), default="drive")
    ap.add_argument("--budget", type=float, default=10.0, help="minutes per network (and for the plain loop)")
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--n-folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nets", default="all", help="comma-separated --net names (default: all that take the data)")
    ap.add_argument("--skip-plain", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.data == "drive":
        ds, dims = drive.drive_dataset(), 2
        load, what = drive.load_cases, "F1(FOV)"

        def score(preds, val):
            return drive.f1_scores(preds, [v[1] for v in val], [v[2] for v in val])[0]
    else:
        root = shared_data("Hippocampus")
        if root is None:
            sys.exit("Hippocampus not found under ../shared/data; nothing to benchmark")
        ds, dims = load_dataset(root), 3
        load, what = hippo.load_cases, "mean Dice"

        def score(preds, val):
            return hippo.mean_dice(preds, [v[1] for v in val])[0]
    nets = nets_for(dims) if a.nets == "all" else [n.strip() for n in a.nets.split(",") if n.strip()]
    splits = make_splits([c.case_id for c in ds.cases], a.n_folds, a.seed)
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_nets_"))
    out.mkdir(parents=True, exist_ok=True)
    val = load(ds, splits[a.fold]["val"])
    print(f"# {a.data} fold {a.fold}, {a.budget} min per network on the CPU, torch threads {torch.get_num_threads()}")
    print(f"| network | {what} | steps | samples/s | params | predict s/case |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name in nets:
        try:
            r = run_net(ds, name, a.fold, a.n_folds, a.budget, a.seed, out / name.replace(":", "_"), val, score)
        except Exception as exc:  # noqa: BLE001 - one network failing is a row of the table, not the end
            print(f"| {name} | failed: {str(exc).splitlines()[0][:80]} | | | | |", flush=True)
            continue
        results[name] = r
        print(f"| {name} | {r['score']:.4f} | {r['steps']} | {r['samples_per_s']:.1f} | {r['params'] / 1e6:.1f}M | "
              f"{r['predict_s_per_case']} |", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    if not a.skip_plain:
        train = load(ds, splits[a.fold]["train"])
        if a.data == "drive":
            r = drive.plain_loop(train, val, a.budget * 60, a.seed, 60.0, device="cpu")
            s = r["f1"]
        else:
            r = hippo.plain_loop(train, val, a.budget * 60, a.seed, "cpu")
            s = r["dice"]
        results["plain MONAI loop"] = r
        print(f"| plain MONAI loop | {s:.4f} | {r['steps']} | {r['samples_per_s']:.1f} | | |", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    best = max(results.items(), key=lambda kv: kv[1].get("score", kv[1].get("f1", kv[1].get("dice", -np.inf))))
    print(f"best: {best[0]}; results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
