"""Peak memory of whole-volume inference: medseg's predictor vs a plain MONAI TTA loop.

Both run the same 3D network (random weights, or a trained medseg model with ``--model``) over
one random volume with Gaussian-weighted sliding windows (overlap 0.5) and, with ``--tta``,
mirroring test-time augmentation over the three axes:

* plain: ``sliding_window_inference`` per mirror, ``softmax``, flip back, ``acc = acc + p``,
  then ``acc / n`` — the loop a MONAI user writes;
* medseg: :class:`medseg.infer.predictor.Predictor` (in-place softmax and averaging; on a GPU
  the stitching moves to CPU memory when the GPU is short).

Each contender runs in its own process; the figure is the growth of the peak resident memory
(CPU) or the peak of ``torch.cuda.max_memory_allocated`` (GPU) during the prediction.

``--ct-volume`` measures instead the whole command on a CT-sized volume: the peak resident
memory (``/usr/bin/time -v``) of ``medseg predict`` on an int16 NIfTI of ``--ct-shape``
(default 1000x512x512, 0.5 GB; 1 GB as float32) and ``--ct-spacing`` with a tiny 3D model (trained here for a few
steps on phantoms, or ``--model``), windows without overlap and without TTA (the network's
speed is not the point; the whole-volume arrays are).

Usage::

    python benchmarks/bench_dl_memory.py --shape 96,256,256 --tta
    python benchmarks/bench_dl_memory.py --shape 192,256,256 --device cuda --tta
    python benchmarks/bench_dl_memory.py --ct-volume                  # peak RSS of medseg predict, 512x512x1000
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def _net_and_plan(model: str | None):
    from medseg.dl.plan import Plan
    from medseg.nets import create_net

    if model:
        from medseg.methods.base import load_model

        seg = load_model(model)
        return seg.predictor().nets[0], seg.plan
    torch.manual_seed(0)
    plan = Plan(dims=3, in_channels=1, n_classes=3, patch_size=(48, 64, 48), channels=(16, 32, 64, 128),
                mirror_axes=(0, 1, 2), aug_strength=1.0)
    net = create_net("unet", spatial_dims=3, in_channels=1, out_channels=3, channels=plan.channels,
                     num_res_units=2, norm="instance")
    return net.eval(), plan


def worker(a) -> None:
    from monai.inferers import sliding_window_inference

    from medseg.infer.predictor import Predictor

    torch.set_num_threads(a.threads)
    net, plan = _net_and_plan(a.model)
    dev = torch.device(a.device)
    net = net.to(dev)
    shape = tuple(int(s) for s in a.shape.split(","))
    x = np.random.default_rng(0).normal(size=(plan.in_channels,) + shape).astype(np.float32)
    flips = [()] + ([(2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)] if a.tta else [])
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if a.worker == "plain":
        with torch.no_grad():
            xt = torch.from_numpy(x)[None].to(dev)
            acc = None
            for f in flips:
                xi = torch.flip(xt, f) if f else xt
                p = torch.softmax(sliding_window_inference(xi, plan.patch_size, 4, net, overlap=0.5,
                                                           mode="gaussian"), 1)
                p = torch.flip(p, f) if f else p
                acc = p if acc is None else acc + p
            out = (acc / len(flips))[0].cpu().numpy()
    else:
        pr = Predictor([net], plan, tta=a.tta, overlap=0.5, device=a.device, sw_batch_size=4)
        out = pr.probabilities(x)
    dt = time.perf_counter() - t
    if dev.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    print(json.dumps({"peak_mb": round(peak, 1), "seconds": round(dt, 2), "tensor_mb": round(out.nbytes / 2 ** 20, 1),
                      "checksum": float(out[1].sum())}))


def _tiny_3d_model(root) -> str:
    """A 3D unet model folder trained for a few steps on phantoms (patch 32x64x64, widths 4-8-16)."""
    from medseg.io import load_dataset
    from medseg.methods.dl import train_unet
    from medseg.testing import make_dataset
    from medseg.train import TrainConfig

    data = make_dataset(root / "data", kind="disc3d", n=4, shape=(32, 64, 64))
    cfg = TrainConfig(epochs=1, folds=2, fold="0", iters_per_epoch=2, batch_size=2, channels=(4, 8, 16),
                      patch_size=(32, 64, 64), progress=False, workers=1)
    train_unet(load_dataset(data), root / "model", cfg)
    return str(root / "model")


def ct_volume(a) -> dict:
    """Peak RSS of ``medseg predict`` on one CT-sized int16 volume (see the module docstring)."""
    import re
    import tempfile
    from pathlib import Path

    import nibabel as nib

    shape = tuple(int(s) for s in a.ct_shape.split(","))
    with tempfile.TemporaryDirectory(dir=a.tmp) as tmp:
        root = Path(tmp)
        model = a.model or _tiny_3d_model(root)
        rng = np.random.default_rng(0)
        vol = np.full(shape, -1000, np.int16)  # air, a body cylinder of soft tissue, noise
        zz, yy, xx = shape
        y, x = np.ogrid[:yy, :xx]
        body = (y - yy / 2) ** 2 + (x - xx / 2) ** 2 < (0.4 * min(yy, xx)) ** 2
        for z0 in range(0, zz, 50):
            sl = vol[z0:z0 + 50]
            sl[:, body] = (40 + rng.normal(0, 20, (sl.shape[0], int(body.sum())))).astype(np.int16)
        sp = [float(v) for v in a.ct_spacing.split(",")]  # z, y, x; the NIfTI affine is x, y, z
        nib.save(nib.Nifti1Image(np.ascontiguousarray(vol.transpose(2, 1, 0)), np.diag(sp[::-1] + [1.0])),
                 str(root / "ct.nii"))
        del vol
        cmd = ["/usr/bin/time", "-v", str(Path(sys.executable).parent / "medseg"), "predict", model,
               str(root / "ct.nii"), str(root / "out"), "--no-tta", "--overlap", "0", "--compile", "off",
               "--device", "cpu"]
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t
        if r.returncode:
            sys.exit(f"medseg predict failed:\n{r.stderr[-3000:]}")
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
        labels = nib.load(str(root / "out" / "ct.nii")).get_fdata(dtype=np.float32)
    return {"shape": "x".join(map(str, shape)), "peak_rss_gb": round(peak_kb / 2 ** 20, 2), "seconds": round(dt, 1),
            "input_gb": round(np.prod(shape) * 2 / 2 ** 30, 2), "foreground_fraction": round(float(labels.mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="96,256,256", help="volume z,y,x")
    ap.add_argument("--tta", action="store_true", help="mirroring TTA over the three axes (8 passes)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None, help="a trained 3D medseg unet model folder (default: random weights)")
    ap.add_argument("--ct-volume", action="store_true", help="peak RSS of the medseg predict command on a "
                    "CT-sized int16 volume instead")
    ap.add_argument("--ct-shape", default="1000,512,512", help="--ct-volume: z,y,x")
    ap.add_argument("--ct-spacing", default="2,1,1", help="--ct-volume: voxel spacing z,y,x (the default is the "
                    "tiny model's target spacing: no resampling; 1,1,1 makes the plan resample the volume)")
    ap.add_argument("--tmp", default=None, help="--ct-volume: folder for the volume and outputs (default: system temp)")
    ap.add_argument("--worker", choices=("plain", "medseg"), default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a)
    if a.ct_volume:
        res = ct_volume(a)
        print(f"medseg predict on {res['shape']} int16 ({res['input_gb']} GB): peak RSS {res['peak_rss_gb']} GB, "
              f"{res['seconds']} s (foreground fraction {res['foreground_fraction']})")
        return None
    res = {}
    for name in ("plain", "medseg"):
        cmd = [sys.executable, __file__, "--worker", name, "--shape", a.shape, "--device", a.device,
               "--threads", str(a.threads)] + (["--tta"] if a.tta else []) + (["--model", a.model] if a.model else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{name} failed:\n{r.stderr[-2000:]}")
        res[name] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{name:7s} peak {'GPU' if a.device.startswith('cuda') else 'RSS'} growth {res[name]['peak_mb']:8.1f} MB  "
              f"{res[name]['seconds']:6.2f} s  (one probability tensor {res[name]['tensor_mb']} MB)", flush=True)
    diff = abs(res["plain"]["checksum"] - res["medseg"]["checksum"]) / max(abs(res["plain"]["checksum"]), 1e-9)
    print(f"peak memory medseg / plain: x{res['medseg']['peak_mb'] / max(res['plain']['peak_mb'], 1e-9):.2f}  "
          f"(class-1 probability sums agree to {diff:.1e} relative)")


if __name__ == "__main__":
    main()
