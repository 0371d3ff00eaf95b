"""Inference and training speed: medseg's predictor/trainer vs plain MONAI, same network.

Inference: a U-Net trained by medseg on DRIVE fold 0 (or ``--model DIR``) segments the
held-out images with plain MONAI ``sliding_window_inference(x, patch, 4, net)`` (its
defaults: overlap 0.25, constant weighting, ``torch.no_grad``) and with medseg's
:class:`~medseg.infer.Predictor` (no TTA, overlap 0.25, Gaussian weighting,
``inference_mode``) with the torch and the ONNX Runtime backends and with the network
compiled by ``torch.compile`` (timed after the first repeat, which compiles; the compile
seconds are printed), each with training-size
windows and with the window ``medseg train`` chose on validation (``inference_window`` in
model.json; ``--window`` overrides, e.g. for models trained before that choice existed) —
all on the same network and preprocessed arrays, timings interleaved, best of
``--repeat``. It prints seconds per image, the speed-up over plain and the F1 (FOV) of each
(the issue asks for equal F1 within ±0.002).

Training throughput: samples/s of ``medseg``'s training loop (background augmentation,
sampling, Dice+CE, clipping) vs the plain loop of issue 8 running the very same network
(medseg's ``unet`` 16-32-64-128 with residual units and affine instance norm), patch
128x128 and batch 8, over ``--steps`` steps each, interleaved ``--repeat`` times (best kept);
medseg runs uncompiled and with ``torch.compile`` (its default for folds planned to train 5
minutes or more), the latter timed after its first step, which is the compilation (printed).

Usage::

    python benchmarks/bench_dl_infer.py --threads 2 [--model DIR] [--steps 60]
    python benchmarks/bench_dl_infer.py --threads 2 --no-infer --steps 100   # throughput only
    python benchmarks/bench_dl_infer.py --threads 2 --model DIR --fold 1 --overlaps 0.25,0.125,0 --window image --no-train
    python benchmarks/bench_dl_infer.py --threads 2 --model DIR --fold 1 --overlaps 0.25,0.125,0 --layouts --repeat 1 --no-train
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
    ap.add_argument("--model", default=None, help="a medseg unet model folder trained on DRIVE (fold --fold)")
    ap.add_argument("--fold", type=int, default=0, help="the model's fold: its held-out images are timed")
    ap.add_argument("--overlaps", default="0.25",
                    help="medseg window overlaps to try with training-size windows, e.g. 0.25,0.125,0")
    ap.add_argument("--train-minutes", type=float, default=3.0, help="training time when no --model is given")
    ap.add_argument("--steps", type=int, default=60, help="training steps per contender for throughput")
    ap.add_argument("--images", type=int, default=4, help="held-out images to time")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--window", choices=("patch", "image"), default=None,
                    help="medseg's inference window (default: the one in the model folder, chosen on validation)")
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats (interleaved; best is kept)")
    ap.add_argument("--layouts", action="store_true",
                    help="also print the F1 of MONAI's fixed-step window layout vs medseg's evenly spread one "
                         "at each of --overlaps (same Gaussian weighting; quality only, not timed)")
    ap.add_argument("--no-train", action="store_true", help="skip the training-throughput comparison")
    ap.add_argument("--no-infer", action="store_true", help="only the training-throughput comparison")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    import bench_dl_drive as bd
    from medseg.dl.preprocessing import preprocess
    from medseg.methods.base import load_model
    from medseg.methods.dl import train_unet as train_model
    from medseg.train import TrainConfig
    from medseg.train.engine import make_splits

    ds = bd.drive_dataset()
    splits = make_splits([c.case_id for c in ds.cases], 5, 0)
    if a.no_infer:
        return training_throughput(a, bd, ds, splits, TrainConfig, train_model)
    model = Path(a.model) if a.model else Path(tempfile.mkdtemp(prefix="bench_dl_infer_")) / "m"
    if not a.model:
        train_model(ds, model, TrainConfig(time_budget=a.train_minutes, folds=5, fold=str(a.fold), progress=False))
    seg = load_model(model)
    window = a.window or str(seg._info.get("inference_window", "patch"))
    plan = seg.plan
    val = bd.load_cases(ds, splits[a.fold]["val"])[: a.images]
    arrays = [preprocess(img, plan)[0] for img, _, _ in val]
    print(f"# torch threads {torch.get_num_threads()}, patch {plan.patch_size}, channels {plan.channels}, "
          f"medseg window '{window}' ({'--window' if a.window else 'chosen on validation by medseg train'})")

    import copy

    from monai.inferers import sliding_window_inference

    from medseg.infer.predictor import Predictor

    net = copy.deepcopy(seg.predictor().nets[0]).to(memory_format=torch.contiguous_format).eval()

    def run_plain():
        out = []
        with torch.no_grad():
            for x in arrays:
                out.append(sliding_window_inference(torch.from_numpy(x)[None], plan.patch_size, 4, net)
                           .argmax(1)[0].numpy())
        return out

    contenders = {"plain": run_plain}
    overlaps = [float(v) for v in a.overlaps.split(",")]
    compiled = {}
    for backend in ("torch", "onnx", "compiled"):
        for w, ov in [("patch", v) for v in overlaps] + ([(window, 0.25)] if window != "patch" else []):
            try:
                pr = Predictor([copy.deepcopy(net)], plan, tta=False, overlap=ov, device="cpu",
                               backend="torch" if backend == "compiled" else backend, window=w,
                               compile="on" if backend == "compiled" else "off")
            except Exception as exc:  # e.g. onnxruntime not installed
                print(f"# {backend} backend unavailable: {exc}")
                break
            tag = f"overlap {ov}" if w == "patch" else ""
            name = f"medseg {backend:5s} window={w} {tag}"
            contenders[name] = lambda pr=pr: [pr.probabilities(x).argmax(0) for x in arrays]
            if backend == "compiled":
                compiled[name] = pr

    res: dict[str, list] = {}
    for _ in range(a.repeat):  # interleaved, best of --repeat
        for name, fn in contenders.items():
            t = time.perf_counter()
            p = fn()
            dt = (time.perf_counter() - t) / len(arrays)
            f1 = float(np.mean([dice(pp, v[1], label=1, roi=v[2]) for pp, v in zip(p, val)]))
            res.setdefault(name, []).append((dt, f1))
    if a.layouts:
        from medseg.infer.windows import window_overlaps

        with torch.inference_mode():
            for ov in overlaps:
                f = {}
                for layout in ("monai", "even"):
                    preds = []
                    for x in arrays:
                        o = ov if layout == "monai" else window_overlaps(x.shape[1:], plan.patch_size, ov)
                        preds.append(sliding_window_inference(torch.from_numpy(x)[None], plan.patch_size, 8, net,
                                                              overlap=o, mode="gaussian", sigma_scale=0.125)
                                     .argmax(1)[0].numpy())
                    f[layout] = float(np.mean([dice(pp, v[1], label=1, roi=v[2]) for pp, v in zip(preds, val)]))
                print(f"# window layout at overlap {ov}: MONAI fixed step F1 {f['monai']:.4f}, evenly spread "
                      f"F1 {f['even']:.4f} ({f['even'] - f['monai']:+.4f})")
    for name, pr in compiled.items():  # the first repeat paid the compilation: say how much
        secs = [v for t in pr._tiered for v in t.compile_s.values()]
        print(f"# {name.strip()}: compiled {len(secs)} window shape(s) in {sum(secs):.1f} s during the first "
              f"repeat (once per shape and process; medseg predict's default --compile auto compiles only "
              f"after 60 s of uncompiled passes on a shape)" if secs else
              f"# {name.strip()}: compiling failed, ran uncompiled")
    tp, fp = min(r[0] for r in res["plain"]), res["plain"][0][1]
    print(f"plain MONAI sliding_window_inference: {tp:.3f} s/image  F1 {fp:.4f}")
    for name, rows in res.items():
        if name == "plain":
            continue
        t, f = min(r[0] for r in rows), rows[0][1]
        print(f"{name}: {t:.3f} s/image  speed-up x{tp / t:.2f}  F1 {f:.4f}  diff {f - fp:+.4f}", flush=True)
    if not a.no_train:
        training_throughput(a, bd, ds, splits, TrainConfig, train_model)


def training_throughput(a, bd, ds, splits, TrainConfig, train_model) -> None:
    train = bd.load_cases(ds, splits[0]["train"])
    from medseg.nets import create_net

    # the very same network for both: medseg's "unet" (MONAI UNet, residual units, instance
    # norm with affine parameters; the plain loop's own network has no affine parameters)
    same = lambda: create_net("unet", spatial_dims=2, in_channels=3, out_channels=2,  # noqa: E731
                              channels=(16, 32, 64, 128), num_res_units=2, norm="instance")
    plain_sps, medseg_sps, compiled_sps, compile_s = [], [], [], []
    for _ in range(a.repeat):
        plain_sps.append(bd.plain_loop(train, [], a.steps * 1e9, 0, 1e12, max_steps=a.steps,
                                       net_factory=same)["samples_per_s"])
        for mode, into in (("off", medseg_sps), ("on", compiled_sps)):
            out = Path(tempfile.mkdtemp(prefix="bench_dl_thr_")) / "m"
            cfg = TrainConfig(epochs=1, iters_per_epoch=a.steps, folds=5, fold="0", progress=False,
                              channels=(16, 32, 64, 128), patch_size=(128, 128), batch_size=8, compile=mode)
            train_model(ds, out, cfg)
            log = json.loads((out / "fold_0" / "log.json").read_text())
            train_s = log["history"][-1]["train_s"]
            if log["compiled"]:  # steady state: the first step is the one-off compilation
                compile_s.append(log["first_step_s"])
                into.append(8 * (log["steps"] - 1) / (train_s - log["first_step_s"]))
            elif mode == "off":
                into.append(8 * log["steps"] / train_s)
    print(f"training samples/s (best of {a.repeat}): plain {max(plain_sps):.2f}  medseg {max(medseg_sps):.2f}  "
          f"ratio x{max(medseg_sps) / max(plain_sps):.2f}  (all: plain {[round(v, 1) for v in plain_sps]}, "
          f"medseg {[round(v, 1) for v in medseg_sps]})")
    if compiled_sps:
        print(f"medseg with torch.compile (the default for folds planned >= 5 min), after compiling: "
              f"{max(compiled_sps):.2f} samples/s, ratio x{max(compiled_sps) / max(plain_sps):.2f} vs plain; "
              f"compilation (first step) {min(compile_s):.1f}-{max(compile_s):.1f} s "
              f"(all: {[round(v, 1) for v in compiled_sps]})")
    else:
        print("medseg with torch.compile: compiling failed on this machine (see the warning above)")


if __name__ == "__main__":
    main()
