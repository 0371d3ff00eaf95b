"""GPU check: windows on the GPU, stitching on the GPU or (forced) in CPU memory; same result?

Needs a CUDA GPU. Prints the time and peak GPU memory of each way and their largest difference,
then where the predictor would stitch this volume given the card's real free memory::

    python benchmarks/check_gpu_stitching.py
"""
import sys
import time

import numpy as np
import torch

from medseg.dl.plan import Plan
from medseg.infer.predictor import Predictor
from medseg.nets import create_net

if not torch.cuda.is_available():
    sys.exit("no CUDA GPU: this check needs one")
torch.manual_seed(0)
plan = Plan(dims=3, in_channels=1, n_classes=3, patch_size=(64, 64, 64), channels=(16, 32, 64, 128),
            mirror_axes=(0, 1, 2), aug_strength=1.0)
net = create_net("unet", spatial_dims=3, in_channels=1, out_channels=3, channels=plan.channels,
                 num_res_units=2, norm="instance").eval()
x = np.random.default_rng(0).normal(size=(1, 192, 256, 256)).astype(np.float32)
out = {}
for mode in ("gpu", "cpu"):
    p = Predictor([net], plan, tta=True, overlap=0.5, device="cuda")
    if mode == "cpu":
        p._output_device = lambda t: torch.device("cpu")
    torch.cuda.reset_peak_memory_stats(); torch.cuda.synchronize()
    t = time.perf_counter(); out[mode] = p.probabilities(x); torch.cuda.synchronize()
    print(f"stitch on {mode}: {time.perf_counter() - t:.1f} s, peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
          f"sum-to-one err {abs(out[mode].sum(0) - 1).max():.2e}", flush=True)
print("max |gpu - cpu| =", float(np.abs(out["gpu"] - out["cpu"]).max()))
p = Predictor([net], plan, tta=False, device="cuda")
print("decision for this volume with the real free memory:", p._output_device(torch.from_numpy(x)[None]))
