"""The MONAI networks behind --net: each builds in 2D and 3D, trains a step, and the plan's
patch suits its down-sampling (unet++ 16, swin-unetr 32)."""
from __future__ import annotations

import pytest
import torch

from medseg.nets import NETS, create_net, net_divisor
from medseg.train.planner import make_plan

ZOO = ["attention-unet", "segresnet", "unet++", "swin-unetr"]


def _fp(dims, shape):
    return {"dims": dims, "n_cases": 6, "shapes": [list(shape)] * 6, "spacings": [[1.0] * dims] * 6,
            "n_channels": 1, "declared_modality": ["MRI"], "fg_stats": [[0.0, 1.0, 0.5, 0.2]],
            "class_counts": {"0": 1000, "1": 50}, "label_names": {}, "has_roi": False}


def test_zoo_registered():
    assert set(ZOO) <= set(NETS.names())


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("dims", [2, 3])
def test_zoo_forward_and_one_step(name, dims):
    div = net_divisor(name, (4, 8, 16, 32))
    shape = (2 * div, div, div) if dims == 3 else (4 * div, 2 * div)  # the deepest level keeps 2+ voxels
    net = create_net(name, spatial_dims=dims, in_channels=2, out_channels=3, channels=(4, 8, 16, 32))
    x = torch.randn((1, 2) + shape)
    net.train()
    y = net(x)
    assert y.shape == (1, 3) + shape
    y.mean().backward()  # gradients reach the first layer
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in list(net.parameters())[:3])


@pytest.mark.parametrize("name, div", [("unet", 8), ("attention-unet", 8), ("unet++", 16), ("swin-unetr", 32)])
def test_plan_patch_fits_the_network(name, div):
    plan = make_plan(_fp(2, (200, 180)), overrides={"net": name}, measure=False, train_steps=10)
    assert plan.net == name
    assert all(p % div == 0 for p in plan.patch_size)
    assert any(p >= 2 * div for p in plan.patch_size)
