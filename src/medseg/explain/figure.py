"""Figures of an explanation: the image with the predicted structure's outline, the saliency
as a heat map over it, and (pixel classifiers) the signed contribution map of the families
that matter most.

Volumes show the axial slice (first axis) with the most saliency inside the predicted
structure (the most saliency anywhere when the structure is empty). The PNG is what
``medseg explain`` writes as ``overlay.png`` and what ``medseg evaluate --explain`` puts
beside each worst case.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((32, 32)); img[8:20, 8:20] = 1
>>> sal = img.copy(); lab = img.astype(np.uint8)
>>> overlay_png(img, lab, [("Grad-CAM", sal)], title="class 1")[:4]
b'\\x89PNG'
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medseg.viz.overlay import composite, outline_layer, to_display
from medseg.viz.plots import png_bytes

__all__ = ["overlay_png", "pick_slice_index"]


def pick_slice_index(labels: np.ndarray, maps: Sequence[np.ndarray]) -> int:
    """The slice (first axis) of a volume with the most map mass inside the labels (anywhere without labels).

    Examples
    --------
    >>> lab = np.zeros((3, 4, 4), np.uint8); lab[2, 1:3, 1:3] = 1
    >>> pick_slice_index(lab, [np.ones((3, 4, 4))])
    2
    """
    mass = np.sum([np.abs(np.asarray(m, np.float64)) for m in maps], axis=0)
    inside = labels > 0
    per = (mass * inside).sum(axis=tuple(range(1, mass.ndim))) if inside.any() else \
        mass.sum(axis=tuple(range(1, mass.ndim)))
    return int(np.argmax(per))


def _slice(a: np.ndarray | None, ndim: int, z: int | None) -> np.ndarray | None:
    if a is None or z is None:
        return a
    a = np.asarray(a)
    return a[z] if a.ndim == ndim else a[:, z]  # a channel axis first


def overlay_png(image: np.ndarray | None, labels: np.ndarray, maps: Sequence[tuple[str, np.ndarray]], *,
                title: str, signed: bool = False, aspect: float = 1.0, width: float = 3.2) -> bytes:
    """PNG of the image with the structure's outline, then each map over it.

    Parameters
    ----------
    image : ndarray or None
        ``([C,] *spatial)``; ``None`` draws a grey background.
    labels : ndarray, shape spatial
        Where the outline is drawn (nonzero voxels: the explained structure).
    maps : sequence of (str, ndarray)
        ``(caption, map of shape spatial)``: saliency in [0, 1] (heat map, transparent where
        low) or, with ``signed``, contributions (blue negative, red positive, symmetric limits).
    title : str
        Figure title.
    signed : bool
        Draw the maps with a diverging colour scale.
    aspect : float
        Pixel height over width (spacing ratio).
    width : float
        Inches per panel.

    Returns
    -------
    bytes
    """
    import matplotlib  # deferred: Matplotlib only for figures

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt  # deferred: after the backend

    labels = np.asarray(labels)
    z = pick_slice_index(labels, [m for _, m in maps]) if labels.ndim == 3 else None
    lab2 = (_slice(labels, labels.ndim, z) > 0).astype(np.uint8)
    base = to_display(_slice(image, labels.ndim, z), lab2.shape)
    outlined = composite(base, outline_layer(lab2, ["sky blue"], fill_alpha=0.0))
    h, w = lab2.shape
    n = 1 + len(maps)
    fig = plt.figure(figsize=(width * n + 0.6, width * h * aspect / w + 0.8))
    grid = fig.add_gridspec(1, n + 1, width_ratios=[1.0] * n + [0.05], wspace=0.06)
    axes = [fig.add_subplot(grid[0, i]) for i in range(n)]
    axes[0].imshow(outlined, interpolation="nearest", aspect=aspect)
    axes[0].set_title("image, predicted structure" + (f" (slice {z})" if z is not None else ""), fontsize=9)
    slices = [np.asarray(_slice(m, labels.ndim, z), np.float64) for _, m in maps]
    lim = max([float(np.abs(m).max()) for m in slices] + [0.0]) or 1.0
    edge = outline_layer(lab2, ["sky blue"], fill_alpha=0.0, halo=False)
    for ax, (name, _), m2 in zip(axes[1:], maps, slices):
        ax.imshow(base, interpolation="nearest", aspect=aspect)
        if signed:  # one symmetric scale for every panel: the families compare directly
            rgba = plt.get_cmap("RdBu_r")(np.clip(0.5 + m2 / (2 * lim), 0, 1))
            rgba[..., 3] = np.clip(np.abs(m2) / lim * 2.0, 0, 0.9)
        else:
            rgba = plt.get_cmap("inferno")(np.clip(m2, 0, 1))
            rgba[..., 3] = np.clip(m2 * 2.0, 0, 0.9)
        ax.imshow(rgba, interpolation="nearest", aspect=aspect)
        ax.imshow(edge, interpolation="nearest", aspect=aspect)
        ax.set_title(name, fontsize=9)
    for ax in axes:
        ax.axis("off")
    norm = matplotlib.colors.Normalize(-lim, lim) if signed else matplotlib.colors.Normalize(0, 1)
    sm = plt.cm.ScalarMappable(cmap="RdBu_r" if signed else "inferno", norm=norm)
    cb = fig.colorbar(sm, cax=fig.add_subplot(grid[0, n]))
    cb.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)
