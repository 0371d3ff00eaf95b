"""Describe one image file or DICOM folder (``medseg inspect IMAGE``): geometry, metadata
and per-channel intensity statistics.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medseg.image import Image
from medseg.io import list_series, read_image

__all__ = ["channel_statistics", "describe_image"]


def channel_statistics(image: Image) -> list[dict[str, Any]]:
    """Intensity statistics of each channel of ``image`` over its finite voxels.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.

    Returns
    -------
    list of dict, one per channel
        ``channel``, ``min``, ``max``, ``mean`` (``None`` without finite voxels), ``p0.5``,
        ``p50``, ``p99.5`` (``nan`` without finite voxels) and ``nonfinite`` (NaN/Inf count).

    Examples
    --------
    >>> import numpy as np
    >>> s = channel_statistics(Image(np.array([[0.0, 1.0], [2.0, np.nan]])))[0]
    >>> s["min"], s["max"], s["p50"], s["nonfinite"]
    (0.0, 2.0, 1.0, 1)
    """
    chans = image.channels_first()
    stats = []
    for c in range(chans.shape[0]):
        v = chans[c]
        fin = v[np.isfinite(v)] if v.dtype.kind == "f" else v
        pct = np.percentile(fin, (0.5, 50, 99.5)) if fin.size else [float("nan")] * 3
        stats.append({"channel": c, "min": float(fin.min()) if fin.size else None,
                      "max": float(fin.max()) if fin.size else None,
                      "mean": float(fin.mean()) if fin.size else None, "p0.5": float(pct[0]), "p50": float(pct[1]),
                      "p99.5": float(pct[2]), "nonfinite": int(v.size - fin.size)})
    return stats


def describe_image(path: str | Path, *, series: str | None = None) -> dict[str, Any]:
    """Describe one image file or DICOM folder (what ``medseg inspect IMAGE`` shows).

    Parameters
    ----------
    path : str or Path
        An image file or a DICOM folder.
    series : str, optional
        In a DICOM folder holding several series: the ``SeriesInstanceUID`` to describe.

    Returns
    -------
    dict
        For a DICOM folder with several series and no ``series``: ``path`` and
        ``series`` (``uid``, ``number``, ``description``, ``modality``, ``n_files`` each).
        Else ``path``, ``format``, ``dimensionality``, ``shape``, ``n_channels``, ``dtype``,
        ``spacing``, ``origin``, ``direction``, ``intensity`` (`channel_statistics`)
        and ``meta`` (the reader's plain-valued metadata).

    Examples
    --------
    >>> import numpy as np
    >>> from medseg.io import write_image
    >>> _ = write_image(Image(np.ones((4, 5), np.float32), spacing=(2.0, 1.0)), "one.nii.gz")
    >>> d = describe_image("one.nii.gz")
    >>> d["shape"], d["spacing"], d["intensity"][0]["mean"]
    ([4, 5], [2.0, 1.0], 1.0)
    """
    path = Path(path)
    if path.is_dir() and series is None:
        found = list_series(path)
        if len(found) > 1:
            rows = [{"uid": s.uid, "number": s.number, "description": s.description, "modality": s.modality,
                     "n_files": s.n_files} for s in found]
            return {"path": str(path), "series": rows}
    img = read_image(path, series=series)
    meta = {k: v for k, v in img.meta.items() if isinstance(v, (str, int, float, bool)) and not k.startswith("nifti_")}
    return {"path": str(path), "format": img.meta.get("format"), "dimensionality": img.ndim, "shape": list(img.shape),
            "n_channels": img.n_channels, "dtype": str(img.dtype), "spacing": list(img.spacing),
            "origin": list(img.origin), "direction": np.asarray(img.direction).tolist(),
            "intensity": channel_statistics(img), "meta": meta}
