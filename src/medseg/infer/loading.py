"""Load the networks of a trained model folder (one per fold) safely."""
from __future__ import annotations

from pathlib import Path

import torch

from medseg.errors import ModelError
from medseg.train.checkpoint import load_checkpoint

__all__ = ["load_fold_net"]


def load_fold_net(fold_dir: Path, plan, device: str = "cpu", checkpoint: str = "checkpoint_best.pt") -> torch.nn.Module:
    """The network of ``fold_dir`` built from ``plan`` with weights from ``checkpoint``."""
    from medseg.train.loop import build_net

    ck = load_checkpoint(Path(fold_dir) / checkpoint, map_location=device)
    if "model" not in ck:
        raise ModelError(f"{fold_dir / checkpoint}: not a medseg checkpoint (no model weights)")
    net = build_net(plan)
    try:
        net.load_state_dict(ck["model"])
    except RuntimeError as exc:
        raise ModelError(f"{fold_dir / checkpoint}: weights do not match the plan's network "
                         f"({str(exc).splitlines()[0]}); was plan.json edited?") from None
    return net.to(device).eval()
