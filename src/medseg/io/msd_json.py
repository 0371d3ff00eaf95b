"""The ``dataset.json`` of the nnU-Net v2 / Medical Segmentation Decathlon layout, read and checked."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medseg.errors import InputError

__all__ = ["read_dataset_json"]


def read_dataset_json(path: Path) -> tuple[dict[str, Any], list[str], dict[int, str], str | None]:
    """``(contents, channel names, label names, file ending)`` of an MSD/nnU-Net ``dataset.json``.

    Reads both forms: nnU-Net v2 (``"channel_names"``, ``"labels"`` name -> value) and MSD
    (``"modality"``, ``"labels"`` value -> name). Anything else is one clear error.

    Parameters
    ----------
    path : Path
        The ``dataset.json`` file.

    Raises
    ------
    InputError
        Not JSON, not a JSON object, or a key of the wrong shape (named).
    """
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (dataset.json must be UTF-8 JSON)") from None
    if not isinstance(info, dict):
        raise InputError(f"{path}: the top level must be a JSON object with channel_names/modality, labels, "
                         f"file_ending, ...; found a {type(info).__name__}")
    channels = info.get("channel_names") or info.get("modality") or {}
    if not isinstance(channels, dict) or not all(str(k).isdigit() for k in channels):
        raise InputError(f"{path}: 'channel_names' (or 'modality') must map channel indices to names, "
                         'e.g. {"0": "T1", "1": "FLAIR"}')
    channel_names = [str(channels[k]) for k in sorted(channels, key=lambda k: int(k))]
    raw_labels = info.get("labels") or {}
    if not isinstance(raw_labels, dict):
        raise InputError(f"{path}: 'labels' must map names to values (nnU-Net v2) or values to names (MSD), "
                         'e.g. {"background": 0, "tumour": 1}')
    label_names: dict[int, str] = {}
    for k, v in raw_labels.items():
        if isinstance(v, bool):
            continue
        if isinstance(v, int) or (isinstance(v, float) and v.is_integer()) or (
                isinstance(v, str) and v.isdigit() and not str(k).isdigit()):
            label_names[int(v)] = str(k)
        elif str(k).isdigit():
            label_names[int(k)] = str(v)
    ending = info.get("file_ending")
    if ending is not None and not isinstance(ending, str):
        raise InputError(f"{path}: 'file_ending' must be a string such as \".nii.gz\"")
    return info, channel_names, label_names, ending
