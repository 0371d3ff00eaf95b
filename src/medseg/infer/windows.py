"""Sliding-window layout: windows spread evenly over the image, nnU-Net's way.

Examples
--------
>>> window_overlaps((584, 3), (128, 3), 0.25)
[0.27734375, 0.0]
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["window_overlaps"]


def window_overlaps(shape: Sequence[int], window: Sequence[int], overlap: float) -> list[float]:
    """Per-axis overlaps for MONAI's sliding window that lay the windows out evenly.

    Along each axis the windows are about the fewest whose neighbours overlap by at least
    ``overlap`` (a fraction of the window), ``n = ceil((L - W) / (W (1 - overlap))) + 1``,
    spread evenly over ``[0, L - W]`` (nnU-Net's step computation). MONAI steps by whole
    voxels, ``int(W (1 - overlap))``; the returned fraction makes that step
    ``ceil((L - W) / (n - 1))``, so it runs those windows (fewer where rounding the step up
    to a whole voxel allows, the overlap then short of ``overlap`` by under one voxel), the
    last one flush with the image's edge. Axes no longer than the window get 0 (one window,
    padded).

    Parameters
    ----------
    shape : sequence of int
        The image's spatial shape ``L`` per axis.
    window : sequence of int
        The window ``W`` per axis.
    overlap : float
        The least overlap between neighbouring windows, ``0 <= overlap < 1``.

    Returns
    -------
    list of float
        One overlap per axis, for ``monai.inferers.sliding_window_inference(overlap=...)``.
    """
    out = []
    for length, win in zip(shape, window):
        length, win = int(length), int(win)
        if length <= win:
            out.append(0.0)
            continue
        n = int(np.ceil((length - win) / (win * (1.0 - overlap)))) + 1
        step = -(-(length - win) // (n - 1))
        out.append(max(0.0, 1.0 - (step + 0.5) / win))  # int(win * (1 - o)) == step
    return out
