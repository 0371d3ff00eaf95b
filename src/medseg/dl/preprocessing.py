"""The plan's preprocessing of an image: per-channel normalisation and resampling to the
plan's target spacing. Training prepares its cases with it and inference its inputs, so
the network always sees data prepared the same way.

Examples
--------
>>> import numpy as np
>>> from medseg.dl.plan import Plan
>>> from medseg.image import Image
>>> plan = Plan(dims=2, normalisation=("zscore",), ct_stats=((),), target_spacing=(1.0, 1.0))
>>> array, zoom = preprocess(Image(np.arange(12.0).reshape(3, 4), spacing=(2.0, 1.0)), plan)
>>> array.shape, zoom
((1, 6, 4), (2.0, 1.0))
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from medseg.dl.plan import Plan
from medseg.errors import InputError
from medseg.image import Image
from medseg.io.multimodal import channel_difference

__all__ = ["normalise", "preprocess", "zoom_factors"]


def normalise(array: np.ndarray, kinds: Sequence[str], ct_stats: Sequence[Sequence[float]]) -> np.ndarray:
    """Per-channel intensity normalisation.

    Parameters
    ----------
    array : ndarray, shape (C, *spatial)
        Channel-first image data.
    kinds : sequence of str, length C
        Per channel ``"ct"`` (clip to ``[lo, hi]``, then ``(x - mean) / std`` with the
        dataset's statistics) or anything else (z-score with the image's own mean and std).
    ct_stats : sequence, length C
        Per channel ``(lo, hi, mean, std)`` for ``"ct"`` channels (empty otherwise).

    Returns
    -------
    ndarray of float32, shape (C, *spatial)

    Examples
    --------
    >>> import numpy as np
    >>> normalise(np.array([[[-2000.0, 0.0, 500.0]]]), ["ct"], [(-1000.0, 1000.0, 0.0, 100.0)]).tolist()
    [[[-10.0, 0.0, 5.0]]]
    """
    out = np.empty(array.shape, np.float32)
    for c in range(array.shape[0]):
        a = out[c]  # computed in place (a CT volume is 1 GB as float32): the same float32 operations
        a[...] = array[c]
        if kinds[c] == "ct" and ct_stats[c]:
            lo, hi, mean, std = ct_stats[c]
            np.clip(a, lo, hi, out=a)
            a -= np.float32(mean)
            a /= np.float32(max(std, 1e-6))
        else:
            mu, sd = a.mean(), max(float(a.std()), 1e-6)
            a -= mu
            a /= np.float32(sd)
    return out


def zoom_factors(spacing: Sequence[float], target: Sequence[float]) -> tuple[float, ...] | None:
    """Zoom factors from ``spacing`` to ``target`` (one per axis), ``None`` within 1 %.

    Examples
    --------
    >>> zoom_factors((2.0, 1.0), (1.0, 1.0))
    (2.0, 1.0)
    >>> zoom_factors((1.0, 1.0), (1.001, 1.0)) is None
    True
    """
    f = tuple(float(s) / float(t) for s, t in zip(spacing, target))
    return None if np.allclose(f, 1.0, rtol=0.01) else f


def preprocess(image: Image, plan: Plan) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """An image as the plan's network sees it: normalised, at the plan's target spacing.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)`` with ``plan.dims`` spatial axes and ``plan.in_channels``
        channels.
    plan : Plan

    Returns
    -------
    array : ndarray of float32, shape (C, *spatial')
        Normalised (`normalise`) and resampled (cubic) to ``plan.target_spacing``.
    zoom : tuple of float or None
        The zoom factors applied, ``None`` when the image was not resampled.

    Raises
    ------
    InputError
        The image's dimensionality or channel count differs from the plan's, or its channel
        names (``meta["channel_names"]``, when known) differ from ``plan.channel_names``.
    """
    if image.ndim != plan.dims:
        raise InputError(f"the model was trained on {plan.dims}D images; this image is {image.ndim}D {image.shape}")
    names = [str(n) for n in image.meta.get("channel_names") or []]
    if image.n_channels != plan.in_channels:
        trained = f" ({', '.join(plan.channel_names)})" if plan.channel_names else ""
        given = f" ({', '.join(names)})" if names else ""
        raise InputError(f"the model expects {plan.in_channels} channel(s){trained}; this image has "
                         f"{image.n_channels}{given}")
    diff = channel_difference(plan.channel_names, names) if len(names) == image.n_channels else None
    if diff:
        raise InputError(f"the image's channels differ from the model's: {diff}")
    a = image.array if image.has_channels else image.array[None]
    a = normalise(a, plan.normalisation, plan.ct_stats)
    f = zoom_factors(image.spacing, plan.target_spacing) if plan.target_spacing else None
    if f is not None:
        a = np.stack([ndi.zoom(ch, f, order=3, mode="nearest", grid_mode=True) for ch in a]).astype(np.float32)
    return a, f
