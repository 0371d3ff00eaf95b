"""The network of a plan: built from the plan (`build_net`) and, for a trained fold,
loaded with its checkpoint's weights (`load_fold_net`).

Examples
--------
>>> from medseg.dl.plan import Plan
>>> net = build_net(Plan(dims=2, channels=(4, 8, 16), num_res_units=1))
>>> type(net).__name__
'UNet'
"""
from __future__ import annotations

from pathlib import Path

import torch

from medseg.dl.checkpoint import load_checkpoint
from medseg.dl.plan import Plan
from medseg.errors import ModelError
from medseg.nets import create_net

__all__ = ["build_net", "load_fold_net"]


def build_net(plan: Plan, *, deep_supervision: bool = True) -> torch.nn.Module:
    """The untrained network of ``plan`` (its ``net``, ``channels``, ``norm``, ...).

    Parameters
    ----------
    plan : Plan
    deep_supervision : bool
        For networks that have it (``dynunet``): extra outputs in training mode.

    Returns
    -------
    torch.nn.Module
        Maps ``(N, plan.in_channels, *spatial)`` to logits ``(N, plan.n_classes, *spatial)``;
        with ``plan.fusion == "late"`` one encoder per channel (``late-fusion-unet``).
    """
    name = "late-fusion-unet" if getattr(plan, "fusion", "early") == "late" else plan.net  # medseg.nets.fusion
    return create_net(name, spatial_dims=plan.dims, in_channels=plan.in_channels,
                      out_channels=plan.n_classes, channels=plan.channels,
                      num_res_units=plan.num_res_units, norm=plan.norm, deep_supervision=deep_supervision,
                      patch_size=tuple(plan.patch_size))  # fixed-input networks (unetr) are built for it


def load_fold_net(fold_dir: str | Path, plan: Plan, device: str = "cpu",
                  checkpoint: str = "checkpoint_best.pt") -> torch.nn.Module:
    """The network of a trained fold: built from ``plan``, weights from ``fold_dir/checkpoint``.

    Parameters
    ----------
    fold_dir : str or Path
        A model folder's ``fold_K``.
    plan : Plan
    device : str
        Where the network is placed.
    checkpoint : str
        ``checkpoint_best.pt`` or ``checkpoint_last.pt``.

    Returns
    -------
    torch.nn.Module
        In eval mode, on ``device``.

    Raises
    ------
    ModelError
        A missing or corrupt checkpoint, or weights that do not fit the plan's network.
    """
    ck = load_checkpoint(Path(fold_dir) / checkpoint, map_location=device)
    if "model" not in ck:
        raise ModelError(f"{Path(fold_dir) / checkpoint}: not a medseg checkpoint (no model weights)")
    net = build_net(plan)
    try:
        net.load_state_dict(ck["model"])
    except RuntimeError as exc:
        raise ModelError(f"{Path(fold_dir) / checkpoint}: weights do not match the plan's network "
                         f"({str(exc).splitlines()[0]}); was plan.json edited?") from None
    return net.to(device).eval()
