"""Inference and training speed: medseg's predictor/trainer vs plain MONAI, same network.

Inference: a U-Net trained by medseg on DRIVE fold 0 (or ``--model DIR``) segments the
held-out images twice — with plain MONAI ``sliding_window_inference(x, patch, 4, net)``
(its defaults: overlap 0.25, constant weighting, autograd-free via ``torch.no_grad``) and
with medseg's :class:`~medseg.infer.Predictor` (no TTA, overlap 0.25, Gaussian weighting,
batched windows, channels-last, ``inference_mode``), and again with ``backend="onnx"``
(ONNX Runtime) — on the same preprocessed arrays. It
prints seconds per image, the speed ratio and the F1 (FOV) of both (must agree ±0.002).

Training throughput: samples/s of ``medseg``'s training loop (background augmentation,
sampling, Dice+CE, clipping) vs the plain loop of issue 8, same network
(16-32-64-128, residual units), patch 128x128 and batch 8, over ``--steps`` steps each.

Usage::

    python benchmarks/bench_dl_infer.py --threads 2 [--model DIR] [--steps 60]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medseg.metrics import dice


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a medseg unet model folder trained on DRIVE (fold 0)")
    ap.add_argument("--train-minutes", type=float, default=3.0, help="training time when no --model is given")
    ap.add_argument("--steps", type=int, default=60, help="training steps per contender for throughput")
    ap.add_argument("--images", type=int, default=4, help="held-out images to time")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-train", action="store_true", help="skip the training-throughput comparison")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    import bench_dl_drive as bd
    from medseg.methods.base import load_model
    from medseg.train import TrainConfig, train_model
    from medseg.train.data import preprocess
    from medseg.train.engine import make_splits

    ds = bd.drive_dataset()
    splits = make_splits([c.case_id for c in ds.cases], 5, 0)
    model = Path(a.model) if a.model else Path(tempfile.mkdtemp(prefix="bench_dl_infer_")) / "m"
    if not a.model:
        train_model(ds, model, TrainConfig(time_budget=a.train_minutes, folds=5, fold="0", progress=False))
    seg = load_model(model)
    seg = type(seg).load(model, seg.params.__class__(tta=False, overlap=0.25))
    pred = seg.predictor()
    plan = seg.plan
    net = pred.nets[0]
    val = bd.load_cases(ds, splits[0]["val"])[: a.images]
    arrays = [preprocess(img, plan)[0] for img, _, _ in val]
    print(f"# torch threads {torch.get_num_threads()}, patch {plan.patch_size}, channels {plan.channels}")

    from monai.inferers import sliding_window_inference

    plain_net = seg.predictor().nets[0]
    import copy

    plain_net = copy.deepcopy(net).to(memory_format=torch.contiguous_format).eval()

    def run_plain():
        out = []
        with torch.no_grad():
            for x in arrays:
                out.append(sliding_window_inference(torch.from_numpy(x)[None], plan.patch_size, 4, plain_net)
                           .argmax(1)[0].numpy())
        return out

    def run_medseg():
        return [pred.probabilities(x).argmax(0) for x in arrays]

    from medseg.infer.predictor import Predictor

    pred_onnx = Predictor([copy.deepcopy(plain_net)], plan, tta=False, overlap=0.25, device="cpu", backend="onnx")

    def run_onnx():
        return [pred_onnx.probabilities(x).argmax(0) for x in arrays]

    res = {}
    for name, fn in (("plain", run_plain), ("medseg", run_medseg), ("onnx", run_onnx),
                     ("plain2", run_plain), ("medseg2", run_medseg), ("onnx2", run_onnx)):
        t = time.perf_counter()
        p = fn()
        dt = (time.perf_counter() - t) / len(arrays)
        f1 = float(np.mean([dice(pp, v[1], label=1, roi=v[2]) for pp, v in zip(p, val)]))
        res.setdefault(name.rstrip("2"), []).append((dt, f1))
    tp = min(r[0] for r in res["plain"])
    tm = min(r[0] for r in res["medseg"])
    fp, fm = res["plain"][0][1], res["medseg"][0][1]
    print(f"inference s/image: plain {tp:.3f}  medseg {tm:.3f}  speed-up x{tp / tm:.2f}")
    print(f"F1 (FOV): plain {fp:.4f}  medseg {fm:.4f}  diff {fm - fp:+.4f}")
    to, fo = min(r[0] for r in res["onnx"]), res["onnx"][0][1]
    print(f"medseg with --backend onnx: {to:.3f} s/image, speed-up vs plain x{tp / to:.2f}, F1 {fo:.4f} "
          f"diff {fo - fp:+.4f}", flush=True)
    if a.no_train:
        return

    # ------------------------------------------------------------ training throughput
    train = bd.load_cases(ds, splits[0]["train"])
    t = time.perf_counter()
    r_plain = bd.plain_loop(train, [], a.steps * 1e9, 0, 1e12, max_steps=a.steps)
    t_plain = time.perf_counter() - t
    out = Path(tempfile.mkdtemp(prefix="bench_dl_thr_")) / "m"
    cfg = TrainConfig(epochs=1, iters_per_epoch=a.steps, folds=5, fold="0", progress=False,
                      channels=(16, 32, 64, 128), patch_size=(128, 128), batch_size=8)
    train_model(ds, out, cfg)
    log = json.loads((out / "fold_0" / "log.json").read_text())
    s_medseg = 8 * log["steps"] / log["history"][-1]["train_s"]
    print(f"training samples/s: plain {r_plain['samples_per_s']:.2f}  medseg {s_medseg:.2f}  "
          f"ratio x{s_medseg / r_plain['samples_per_s']:.2f}  (plain total {t_plain:.0f} s)")


if __name__ == "__main__":
    main()
