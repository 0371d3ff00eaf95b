"""Device resolution for training and inference (``--device auto|cpu|cuda``).

Examples
--------
>>> resolve_device("cpu")
'cpu'
"""
from __future__ import annotations

import torch

from medseg.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str) -> str:
    """The torch device name for a ``--device`` value.

    Parameters
    ----------
    device : str
        ``"auto"`` (a CUDA GPU when one is available, else the CPU), ``"cpu"``, ``"cuda"``
        or ``"cuda:N"``.

    Returns
    -------
    str
        ``"cpu"`` or the CUDA device name.

    Raises
    ------
    ConfigError
        CUDA was asked for but is not available, or the name is unknown.

    Examples
    --------
    >>> resolve_device("auto") in ("cpu", "cuda")
    True
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but no CUDA GPU is available; use --device cpu")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ConfigError(f"unknown device '{device}'; choose auto, cpu or cuda")
    return device
