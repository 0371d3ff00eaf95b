"""3D inference speed: medseg's predictor (uncompiled and compiled) vs plain MONAI, same network.

A 3D U-Net of the kind ``medseg train`` plans on a 2-core CPU (MONAI ``UNet`` with residual
units and instance norm; random weights — speed does not depend on them) predicts one random
volume with sliding windows:

* plain: ``sliding_window_inference(x, patch, 4, net, overlap, mode="gaussian")`` under
  ``torch.no_grad`` — the call a MONAI user writes;
* medseg: :class:`medseg.infer.predictor.Predictor` (no TTA, same overlap, evenly spread
  windows) with ``compile="off"`` and ``compile="on"`` (the compiled one timed after a first
  prediction, which compiles; the compile seconds are printed).

Runs are interleaved, best of ``--repeat``. The argmax agreement with plain is printed (the
window layouts differ slightly where MONAI's fixed step and the even spread disagree).

Usage::

    python benchmarks/bench_dl_infer3d.py --threads 2
    python benchmarks/bench_dl_infer3d.py --threads 2 --shape 128,256,256 --patch 64,128,128 --channels 32,64,128,256
    python benchmarks/bench_dl_infer3d.py --device cuda --shape 128,256,256 --patch 64,128,128 --channels 32,64,128,256
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="96,256,256", help="volume z,y,x")
    ap.add_argument("--patch", default="48,64,48", help="window z,y,x")
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (both contenders; on CUDA both run under autocast)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from monai.inferers import sliding_window_inference

    from medseg.dl.plan import Plan
    from medseg.infer.predictor import Predictor
    from medseg.nets import create_net

    ints = lambda s: tuple(int(v) for v in s.split(","))  # noqa: E731
    shape, patch, channels = ints(a.shape), ints(a.patch), ints(a.channels)
    torch.manual_seed(0)
    plan = Plan(dims=3, in_channels=1, n_classes=3, patch_size=patch, channels=channels, mirror_axes=(0, 1, 2))
    net = create_net("unet", spatial_dims=3, in_channels=1, out_channels=3, channels=channels, num_res_units=2,
                     norm="instance").eval().to(a.device)
    cuda = a.device.startswith("cuda")
    x = np.random.default_rng(0).normal(size=(1,) + shape).astype(np.float32)
    eager = Predictor([net], plan, tta=False, overlap=a.overlap, device=a.device)
    comp = Predictor([net], plan, tta=False, overlap=a.overlap, device=a.device, compile="on")
    t = time.perf_counter()
    comp.probabilities(x)  # compiles
    first = time.perf_counter() - t
    compile_s = sum(v for tn in comp._tiered for v in tn.compile_s.values())

    def plain():
        with torch.no_grad(), torch.autocast(a.device.split(":")[0], enabled=cuda):
            y = sliding_window_inference(torch.from_numpy(x)[None].to(a.device), patch, 4, net,
                                         overlap=a.overlap, mode="gaussian")
            return torch.softmax(y.float(), 1)[0].cpu().numpy()

    runs = {"plain": plain, "medseg": lambda: eager.probabilities(x), "medseg compiled": lambda: comp.probabilities(x)}
    times: dict[str, list[float]] = {k: [] for k in runs}
    outs = {}
    for _ in range(a.repeat):
        for k, fn in runs.items():
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            outs[k] = fn()  # numpy on the host: the GPU's work is finished
            times[k].append(time.perf_counter() - t)
    dev = torch.cuda.get_device_name(0) if cuda else f"cpu, {a.threads} threads"
    print(f"# volume {shape}, windows {patch}, channels {channels}, overlap {a.overlap}, {dev}; "
          f"compiled predictor's first run {first:.1f} s ({compile_s:.1f} s compiling)")
    tp = min(times["plain"])
    ref = outs["plain"].argmax(0)
    for k in runs:
        tk = min(times[k])
        agree = float((outs[k].argmax(0) == ref).mean())
        print(f"{k:16s} {tk:8.3f} s  x{tp / tk:.2f} vs plain  argmax agreement {agree:.4f}", flush=True)


if __name__ == "__main__":
    main()
