"""Surface-distance metrics in physical units: Hausdorff, HD95, ASSD and normalised surface Dice.

Definitions (identical to MONAI's ``compute_hausdorff_distance``,
``compute_average_surface_distance(symmetric=True)`` and ``compute_surface_dice`` with
``use_subvoxels=False``, which the tests check):

* **Surface extraction** — the surface ``∂M`` of a binary mask ``M`` is the set of voxels of
  ``M`` with at least one face neighbour (6-connectivity in 3D, 4 in 2D) outside ``M``;
  voxels outside the array count as outside, so a mask touching the border has a surface
  there. This equals ``M ^ scipy.ndimage.binary_erosion(M)``.
* **Distances** — for each voxel of ``∂P`` the Euclidean distance (scaled by ``spacing``,
  in mm) between voxel centres to the nearest voxel of ``∂T``, and vice versa.
* **Hausdorff** = max over both directed sets. **HD95** = ``max(P95(d(∂P→∂T)),
  P95(d(∂T→∂P)))``, each percentile by linear interpolation (NumPy's default; MONAI uses
  the same). Some tools pool both directions before taking the percentile — that is a
  different number. **ASSD** = mean of the two directed sets concatenated. **NSD** at
  tolerance ``τ`` = (#``d(∂P→∂T) ≤ τ`` + #``d(∂T→∂P) ≤ τ``) / (``|∂P| + |∂T|``), counting
  voxels (not sub-voxel surface areas).
* **Region of interest** — surfaces are extracted from the whole masks and then only
  surface voxels inside the ROI are kept (MONAI's ``mask=`` convention), so the ROI's own
  border never creates an artificial surface.

Empty-mask convention: both surfaces empty → every distance metric is ``nan``
(undefined); exactly one empty → Hausdorff/HD95/ASSD are ``inf`` and NSD is ``0``.

Speed: see `medseg.metrics._surface` — the result is exact, not approximate, and
does not depend on the number of threads (``MEDSEG_NUM_THREADS``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medseg.errors import InputError
from medseg.metrics._inputs import pair_arrays, roi_array, spacing_of
from medseg.metrics._surface import directed_distances, surface
from medseg.metrics.catalogue import names

__all__ = ["SurfaceDistances", "surface_distances", "hausdorff", "hd95", "assd", "nsd", "distance_metrics",
           "surface", "DISTANCE_METRICS"]

DISTANCE_METRICS = names("distance")
"""The surface-distance metrics (the catalogue's "distance" family, in column order)."""


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances (mm) between a prediction and a ground truth.

    Computed once by `surface_distances`; every distance metric is a method, so
    several metrics cost one distance computation.

    Attributes
    ----------
    pred_to_truth : numpy.ndarray, shape ``(|∂P|,)``
        Distance from each prediction surface voxel to the nearest truth surface voxel.
    truth_to_pred : numpy.ndarray, shape ``(|∂T|,)``
        Distance from each truth surface voxel to the nearest prediction surface voxel.

    Examples
    --------
    >>> import numpy as np
    >>> d = SurfaceDistances(np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0]))
    >>> d.hausdorff(), round(d.hausdorff(95), 4), d.assd(), d.nsd(0.5)
    (1.0, 0.9, 0.2, 0.8)
    """

    pred_to_truth: np.ndarray
    truth_to_pred: np.ndarray

    @property
    def state(self) -> str:
        """``"both"``/``"prediction"``/``"truth"`` when that surface is empty, else ``""``."""
        np_, nt = self.pred_to_truth.size, self.truth_to_pred.size
        return "both" if np_ == 0 and nt == 0 else "prediction" if np_ == 0 else "truth" if nt == 0 else ""

    def hausdorff(self, percentile: float | None = None) -> float:
        """Symmetric (percentile) Hausdorff distance in mm; see the module docstring.

        Parameters
        ----------
        percentile : float in [0, 100], optional
            ``None`` for the maximum (Hausdorff), ``95`` for HD95.

        Returns
        -------
        float
            ``nan`` when both surfaces are empty, ``inf`` when exactly one is.
        """
        s = self.state
        if s:
            return float("nan") if s == "both" else float("inf")
        if percentile is None:
            return float(max(self.pred_to_truth.max(), self.truth_to_pred.max()))
        if not 0 <= percentile <= 100:
            raise InputError(f"percentile must be in [0, 100], got {percentile}")
        return float(max(np.percentile(self.pred_to_truth, percentile), np.percentile(self.truth_to_pred, percentile)))

    def assd(self) -> float:
        """Average symmetric surface distance in mm (mean of both directed sets pooled).

        Returns
        -------
        float
            ``nan`` when both surfaces are empty, ``inf`` when exactly one is.
        """
        s = self.state
        if s:
            return float("nan") if s == "both" else float("inf")
        n = self.pred_to_truth.size + self.truth_to_pred.size
        return float((self.pred_to_truth.sum() + self.truth_to_pred.sum()) / n)

    def nsd(self, tolerance: float) -> float:
        """Normalised surface Dice at ``tolerance`` mm.

        Parameters
        ----------
        tolerance : float
            Distance in mm (>= 0) within which a surface voxel counts as matched.

        Returns
        -------
        float
            Fraction in ``[0, 1]``; ``nan`` when both surfaces are empty, ``0`` when one is.
        """
        if not np.isfinite(tolerance) or tolerance < 0:
            raise InputError(f"the NSD tolerance must be a non-negative number of mm, got {tolerance}")
        n = self.pred_to_truth.size + self.truth_to_pred.size
        if n == 0:
            return float("nan")
        ok = np.count_nonzero(self.pred_to_truth <= tolerance) + np.count_nonzero(self.truth_to_pred <= tolerance)
        return float(ok / n)


def surface_distances(pred: Any, truth: Any, *, label: int | None = None, spacing: Any = None,
                      roi: Any = None) -> SurfaceDistances:
    """Directed surface distances between ``pred == label`` and ``truth == label``.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``.
    label : int or None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.

    Returns
    -------
    SurfaceDistances
        Both directed distance sets, in mm.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((3, 5), int); a[1, 0:3] = 1     # three pixels in a row
    >>> b = np.zeros((3, 5), int); b[1, 0:2] = 1     # the first two of them
    >>> d = surface_distances(a, b)
    >>> d.pred_to_truth.tolist(), d.truth_to_pred.tolist()
    ([0.0, 0.0, 1.0], [0.0, 0.0])
    """
    p, t = pair_arrays(pred, truth)
    sp = np.asarray(spacing_of(pred, truth, spacing=spacing, ndim=p.ndim), dtype=np.float64)
    m = roi_array(roi, t.shape)
    pm, tm = (p > 0, t > 0) if label is None else (p == label, t == label)
    return SurfaceDistances(*directed_distances(pm, tm, sp, m))


def hausdorff(pred: Any, truth: Any, *, label: int | None = None, spacing: Any = None, roi: Any = None,
              percentile: float | None = None) -> float:
    """Symmetric Hausdorff distance in mm: the largest surface distance in either direction.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``, on the same grid.
    label : int or None, default None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : float or sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.
    percentile : float in [0, 100], optional
        Take this percentile of each direction instead of the maximum (``95`` gives HD95).

    Returns
    -------
    float
        ``nan`` when both masks are empty, ``inf`` when exactly one is.

    Examples
    --------
    Single pixels three columns apart, with 0.5 mm columns:

    >>> import numpy as np
    >>> a = np.zeros((3, 5), int); a[1, 0] = 1
    >>> b = np.zeros((3, 5), int); b[1, 3] = 1
    >>> hausdorff(a, b), hausdorff(a, b, spacing=(1.0, 0.5))
    (3.0, 1.5)
    """
    return surface_distances(pred, truth, label=label, spacing=spacing, roi=roi).hausdorff(percentile)


def hd95(pred: Any, truth: Any, *, label: int | None = None, spacing: Any = None, roi: Any = None) -> float:
    """95th-percentile Hausdorff distance in mm (see the module docstring for the convention).

    The larger of the two directed 95th percentiles, each by linear interpolation.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``, on the same grid.
    label : int or None, default None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : float or sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.

    Returns
    -------
    float
        ``nan`` when both masks are empty, ``inf`` when exactly one is.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((8, 8), int); a[2:5, 2:5] = 1
    >>> b = np.zeros((8, 8), int); b[2:5, 3:6] = 1
    >>> hd95(a, b, spacing=(1.0, 2.0))
    2.0

    Three pixels in a row against the first two: the directed distances are ``[0, 0, 1]``
    and ``[0, 0]``; the 95th percentile of ``[0, 0, 1]`` is ``0 + 0.9 * (1 - 0)``:

    >>> a = np.zeros((3, 5), int); a[1, 0:3] = 1
    >>> b = np.zeros((3, 5), int); b[1, 0:2] = 1
    >>> round(hd95(a, b), 6), hausdorff(a, b)
    (0.9, 1.0)
    """
    return surface_distances(pred, truth, label=label, spacing=spacing, roi=roi).hausdorff(95)


def assd(pred: Any, truth: Any, *, label: int | None = None, spacing: Any = None, roi: Any = None) -> float:
    """Average symmetric surface distance in mm: the mean of both directed distance sets together.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``, on the same grid.
    label : int or None, default None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : float or sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.

    Returns
    -------
    float
        ``nan`` when both masks are empty, ``inf`` when exactly one is.

    Examples
    --------
    Directed distances ``[0, 0, 1]`` and ``[0, 0]``: five surface pixels, total 1 mm.

    >>> import numpy as np
    >>> a = np.zeros((3, 5), int); a[1, 0:3] = 1
    >>> b = np.zeros((3, 5), int); b[1, 0:2] = 1
    >>> assd(a, b)
    0.2
    """
    return surface_distances(pred, truth, label=label, spacing=spacing, roi=roi).assd()


def nsd(pred: Any, truth: Any, *, tolerance: float = 1.0, label: int | None = None, spacing: Any = None,
        roi: Any = None) -> float:
    """Normalised surface Dice: fraction of both surfaces within ``tolerance`` mm of the other.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``, on the same grid.
    tolerance : float, default 1
        Distance in mm within which a surface voxel counts as matched.
    label : int or None, default None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : float or sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.

    Returns
    -------
    float
        In ``[0, 1]``; ``nan`` when both masks are empty, ``0`` when exactly one is.

    Examples
    --------
    Directed distances ``[0, 0, 1]`` and ``[0, 0]``: four of the five are within 0.5 mm.

    >>> import numpy as np
    >>> a = np.zeros((3, 5), int); a[1, 0:3] = 1
    >>> b = np.zeros((3, 5), int); b[1, 0:2] = 1
    >>> nsd(a, b, tolerance=0.5), nsd(a, b, tolerance=1.0)
    (0.8, 1.0)
    """
    return surface_distances(pred, truth, label=label, spacing=spacing, roi=roi).nsd(tolerance)


def distance_metrics(pred: Any, truth: Any, *, label: int | None = None, spacing: Any = None, roi: Any = None,
                     tolerance: float = 1.0) -> dict[str, float]:
    """Hausdorff, HD95, ASSD and NSD from one surface-distance computation.

    Parameters
    ----------
    pred, truth : numpy.ndarray or Image
        Integer label maps, shape ``(y, x)`` or ``(z, y, x)``, on the same grid.
    label : int or None, default None
        Class to compare; ``None`` compares foreground (``> 0``).
    spacing : float or sequence of float, optional
        Voxel size in mm per axis (NumPy order); defaults to the Images' spacing, else 1.
    roi : array_like or Image, optional
        Only surface voxels inside the ROI are kept.
    tolerance : float, default 1
        NSD tolerance in mm.

    Returns
    -------
    dict
        ``{"hausdorff", "hd95", "assd", "nsd"}`` in mm (NSD is a fraction).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((3, 5), int); a[1, 0:3] = 1
    >>> b = np.zeros((3, 5), int); b[1, 0:2] = 1
    >>> {k: round(v, 6) for k, v in distance_metrics(a, b, tolerance=0.5).items()}
    {'hausdorff': 1.0, 'hd95': 0.9, 'assd': 0.2, 'nsd': 0.8}
    """
    d = surface_distances(pred, truth, label=label, spacing=spacing, roi=roi)
    return {"hausdorff": d.hausdorff(), "hd95": d.hausdorff(95), "assd": d.assd(), "nsd": d.nsd(tolerance)}
