"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain values (a network's ``state_dict`` under
``"model"``, training state, ...). Reading never unpickles arbitrary objects, so a tampered
file cannot run code; a missing, truncated or foreign file is a [`ModelError`][medseg.errors.ModelError]
with a one-line message.

Examples
--------
>>> import torch
>>> path = save_checkpoint({"model": {"w": torch.ones(2)}, "step": 3}, "example.pt")
>>> load_checkpoint(path)["step"]
3
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from medseg.errors import ModelError
from medseg.io.atomic import atomic_path

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(obj: dict[str, Any], path: str | Path) -> Path:
    """Save a dict of tensors and plain values to ``path`` atomically (temp file + rename).

    Parameters
    ----------
    obj : dict
        Tensors, numbers, strings and lists/dicts of them (what ``weights_only`` loading
        accepts).
    path : str or Path

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects.

    Parameters
    ----------
    path : str or Path
    map_location : str or torch.device
        Where the tensors are loaded.

    Returns
    -------
    dict

    Raises
    ------
    ModelError
        The file is missing, corrupt, not a dict, or holds objects other than tensors and
        plain values.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found; the model folder is incomplete (train it again)")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelError(f"{path}: corrupt or unreadable checkpoint ({_reason(exc)}); "
                         "retrain, or resume from another checkpoint") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a medseg checkpoint")
    return data


def _reason(exc: BaseException) -> str:
    """torch's loading error in a few words: its first sentence, without advice that does
    not apply (torch suggests ``weights_only=False``, which medseg never uses: it would
    execute whatever a tampered file holds)."""
    text = str(exc).strip()
    if "weights only load failed" in text.lower() or isinstance(exc, pickle.UnpicklingError):
        return "not a file of tensors and plain values as medseg writes"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first.split(". ")[0].rstrip(".")
