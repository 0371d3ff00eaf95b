"""Training data: cases prepared in the plan's space, patch sampling and augmentation.

Cases are preprocessed as inference preprocesses its inputs
([`medseg.dl.preprocessing.preprocess`][]). Everything random here is drawn from a
generator seeded by ``(seed, step)``, so the batch of a given step is the same whether it
was produced in a background thread, after a resume, or in an uninterrupted run: the
sampler's whole state is the step counter.

Examples
--------
>>> import numpy as np
>>> from medseg.dl.plan import Plan
>>> label = np.zeros((40, 40), np.uint8); label[5:9, 5:9] = 1
>>> case = PreparedCase("c", np.zeros((1, 40, 40), np.float32), label, None,
...                     {1: np.argwhere(label == 1).astype(np.int32)}, None)
>>> plan = Plan(dims=2, patch_size=(16, 16), batch_size=4, mirror_axes=(0, 1))
>>> images, labels, mask = PatchSampler([case], plan, seed=0).batch(7)
>>> images.shape, labels.shape, mask.shape
((4, 1, 16, 16), (4, 16, 16), (4, 16, 16))
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from medseg.dl.plan import Plan
from medseg.dl.preprocessing import preprocess
from medseg.errors import InputError
from medseg.image import require_finite
from medseg.io import Case, Dataset
from medseg.roi import BACKGROUND as ROI_BACKGROUND
from medseg.roi import OUTSIDE_SHARE as ROI_OUTSIDE_SHARE

log = logging.getLogger(__name__)

__all__ = ["PreparedCase", "prepare_case", "PatchSampler", "Prefetcher"]


@dataclass
class PreparedCase:
    """A training case in the plan's space.

    Parameters
    ----------
    case_id : str
    image : ndarray of float32, shape (C, *spatial)
        Preprocessed (normalised, at the plan's spacing).
    label : ndarray of uint8 or int64, shape (*spatial)
    roi : ndarray of uint8, shape (*spatial), or None
    fg_index : dict
        Class -> ``(k, ndim)`` int32 voxel coordinates of that class (subsampled).
    roi_index : ndarray of int32, shape (k, ndim), or None
        Voxel coordinates inside the ROI (subsampled).
    outside_in_loss : bool
        The outside of the ROI is background (the plan's ``roi_outside``): it takes part in
        the loss and [`medseg.roi.OUTSIDE_SHARE`][] of the patches are centred anywhere.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    roi: np.ndarray | None
    fg_index: dict[int, np.ndarray]   # class -> (k, ndim) voxel coordinates (subsampled)
    roi_index: np.ndarray | None
    outside_in_loss: bool = False


def prepare_case(dataset: Dataset, case: Case, plan: Plan, *, max_index: int = 20000, seed: int = 0) -> PreparedCase:
    """Load a case and bring it into the plan's space (image, labels and ROI resampled alike).

    Parameters
    ----------
    dataset : Dataset
    case : Case
    plan : Plan
    max_index : int
        At most this many foreground / ROI voxel coordinates are kept per class.
    seed : int
        Seed of that subsampling.

    Returns
    -------
    PreparedCase

    Raises
    ------
    InputError
        NaN/Inf in the image, no label map, or a label value the plan has no class for.
    """
    img = dataset.load_image(case)
    require_finite(img.array, case=case.case_id, before="training")
    lab = dataset.load_label(case, img)
    if lab is None:
        raise InputError(f"case {case.case_id} has no label map; every training case needs one")
    roi = dataset.load_roi(case, img) if plan.use_roi else None
    a, f = preprocess(img, plan)
    la = np.asarray(lab.array)
    if la.max() >= plan.n_classes:
        raise InputError(f"case {case.case_id} has label {int(la.max())} but the plan has {plan.n_classes} classes")
    la = la.astype(np.uint8 if plan.n_classes < 256 else np.int64)
    r = None if roi is None else np.asarray(roi.array).astype(np.uint8)
    if f is not None:
        la = ndi.zoom(la, f, order=0, mode="nearest", grid_mode=True)
        if r is not None:
            r = ndi.zoom(r, f, order=0, mode="nearest", grid_mode=True)
    rng = np.random.default_rng([seed, len(case.case_id)])
    fg = {}
    for c in range(1, plan.n_classes):
        idx = np.argwhere(la == c)
        if len(idx) > max_index:
            idx = idx[rng.choice(len(idx), max_index, replace=False)]
        if len(idx):
            fg[c] = idx.astype(np.int32)
    ri = None
    if r is not None:
        ri = np.argwhere(r > 0)
        if len(ri) > max_index:
            ri = ri[rng.choice(len(ri), max_index, replace=False)]
        ri = ri.astype(np.int32) if len(ri) else None
    return PreparedCase(case.case_id, a, la, r, fg, ri,
                        outside_in_loss=r is not None and plan.roi_outside == ROI_BACKGROUND)


# ---------------------------------------------------------------------------- augmentation
def _rotation(rng: np.random.Generator, dims: int, max_angle: float) -> np.ndarray:
    if dims == 2:
        t = rng.uniform(-max_angle, max_angle)
        return np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    r = np.eye(3)
    for ax in range(3):
        t = rng.uniform(-max_angle, max_angle)
        c, s = math.cos(t), math.sin(t)
        i, j = [k for k in range(3) if k != ax]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        r = r @ m
    return r


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Uniform white noise in [-1, 1] smoothed by a Gaussian of ``sigma`` voxels, made cheaply.

    The field is drawn on a grid ``f = sigma // 3`` times coarser, smoothed there with
    ``sigma / f`` and interpolated up (linearly: the field is smooth at that scale), with its
    amplitude scaled by ``f ** (-d / 2)`` so that its standard deviation is that of the
    full-grid filter. A 48x64x48 field costs ~1 ms instead of ~10 ms.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        The field's shape (a patch).
    sigma : float
        Smoothing scale in voxels.

    Returns
    -------
    numpy.ndarray
        Float32 field of ``shape``.

    Examples
    --------
    >>> f = _smooth_noise(np.random.default_rng(0), (64, 64), 10.0)
    >>> f.shape, bool(0.0 < f.std() < 0.1)
    ((64, 64), True)
    """
    f = max(1, int(sigma // 3))
    if f == 1:
        return ndi.gaussian_filter(rng.uniform(-1, 1, shape), sigma).astype(np.float32)
    coarse = tuple(int(math.ceil((n - 1) / f)) + 1 for n in shape)
    field = ndi.gaussian_filter(rng.uniform(-1, 1, coarse), sigma / f) * f ** (-len(shape) / 2)
    return _upsample(field, f, shape).astype(np.float32)


def _upsample(field: np.ndarray, f: int, shape: tuple[int, ...]) -> np.ndarray:
    """Linear interpolation of a coarse grid (spacing ``f``) at the first ``shape`` fine points,
    one axis at a time, elementwise (no BLAS product: see `PatchSampler`)."""
    out = field
    for ax, n in enumerate(shape):
        c = field.shape[ax]
        pos = np.arange(n) / f
        lo = np.minimum(np.floor(pos).astype(int), c - 1)
        hi = np.minimum(lo + 1, c - 1)
        w = (pos - lo).reshape((-1,) + (1,) * (out.ndim - ax - 1))
        out = np.take(out, lo, axis=ax) * (1 - w) + np.take(out, hi, axis=ax) * w
    return out


class PatchSampler:
    """Draws augmented training batches; batch ``step`` depends only on ``(seed, step)``.

    Parameters
    ----------
    cases : sequence of PreparedCase
        The training cases.
    plan : Plan
        Patch size, batch size, foreground oversampling, mirror axes, rot90.
    seed : int
    augment : bool
        Apply spatial and intensity augmentation.
    strength : float, optional
        Multiplies the probabilities of all transforms: flips, rot90, rotation, scaling,
        elastic and intensity (default: ``plan.aug_strength``).
    """

    def __init__(self, cases: Sequence[PreparedCase], plan: Plan, *, seed: int = 0, augment: bool = True,
                 strength: float | None = None) -> None:
        if not cases:
            raise InputError("no training cases")
        self.cases = list(cases)
        self.plan = plan
        self.seed = int(seed)
        self.augment = augment
        # probability scale of all transforms (flips, rot90, rotation/scaling/elastic, intensity)
        self.strength = float(getattr(plan, "aug_strength", 1.0) if strength is None else strength)
        self.patch = np.array(plan.patch_size, dtype=int)
        self.dims = plan.dims

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The batch of optimisation step ``step``.

        Parameters
        ----------
        step : int

        Returns
        -------
        images : ndarray of float32, shape (B, C, *P)
            ``B = plan.batch_size``, ``P = plan.patch_size``.
        labels : ndarray of int64, shape (B, *P)
        mask : ndarray of float32, shape (B, *P)
            1 where the loss counts (inside the image and the ROI).
        """
        rng = np.random.default_rng([self.seed, int(step)])
        b = self.plan.batch_size
        n_fg = max(1, int(round(b * self.plan.fg_oversample))) if self.plan.fg_oversample > 0 else 0
        xs, ys, ms = [], [], []
        for i in range(b):
            case = self.cases[int(rng.integers(len(self.cases)))]
            x, y, m = self._sample(case, rng, force_fg=i >= b - n_fg)
            xs.append(x)
            ys.append(y)
            ms.append(m)
        return np.stack(xs), np.stack(ys).astype(np.int64), np.stack(ms)

    def _center(self, case: PreparedCase, rng: np.random.Generator, force_fg: bool) -> np.ndarray:
        shape = np.array(case.label.shape)
        if force_fg and case.fg_index:
            classes = sorted(case.fg_index)
            idx = case.fg_index[classes[int(rng.integers(len(classes)))]]
            return idx[int(rng.integers(len(idx)))].astype(float)
        if case.roi_index is not None and not (case.outside_in_loss and rng.random() < ROI_OUTSIDE_SHARE):
            return case.roi_index[int(rng.integers(len(case.roi_index)))].astype(float)
        half = self.patch / 2.0
        lo = np.minimum(half, shape / 2.0)
        hi = np.maximum(shape - half, shape / 2.0)
        return rng.uniform(lo, hi)

    def _sample(self, case: PreparedCase, rng: np.random.Generator, force_fg: bool):
        plan, d = self.plan, self.dims
        center = self._center(case, rng, force_fg)
        aug = self.augment
        p = 0.2 * self.strength
        rot = aug and rng.random() < p
        scl = aug and rng.random() < p
        ela = aug and rng.random() < p
        if rot or scl or ela:
            grid = np.stack(np.meshgrid(*[np.arange(p, dtype=np.float32) - (p - 1) / 2 for p in self.patch],
                                        indexing="ij"))
            mat = np.eye(d)
            if rot:
                mat = _rotation(rng, d, math.pi if d == 2 else math.pi / 6)
            if scl:
                mat = mat * rng.uniform(0.7, 1.4)
            # mat @ grid written out: a BLAS product here would wake numpy's OpenBLAS threads, which
            # then spin and take the cores from torch's (Hippocampus, 2 cores: 0.21 -> 0.15 s/step)
            coords = np.stack([sum(mat[i, j] * grid[j] for j in range(d)) for i in range(d)])
            if ela:
                sigma = rng.uniform(9, 13)
                alpha = rng.uniform(0, 200 if d == 2 else 100) / sigma
                for k in range(d):
                    coords[k] += _smooth_noise(rng, tuple(self.patch), sigma) * alpha * sigma
            coords += center.reshape((d,) + (1,) * d)
            # outside the image: 0, the normalised mean, as the sliding-window inferer pads
            x = np.stack([ndi.map_coordinates(ch, coords, order=1, mode="constant", cval=0.0)
                          for ch in case.image]).astype(np.float32)
            y = ndi.map_coordinates(case.label, coords, order=0, mode="constant", cval=0)
            inside = np.all([(coords[k] > -0.5) & (coords[k] < case.label.shape[k] - 0.5) for k in range(d)], axis=0)
            m = inside.astype(np.float32)
            if case.roi is not None and not case.outside_in_loss:
                m *= ndi.map_coordinates(case.roi, coords, order=0, mode="constant", cval=0)
        else:
            start = np.round(center - self.patch / 2.0).astype(int)
            x, y, m = self._crop(case, start)
        if aug:
            # flips and rot90 multiply the orientations to learn: scaled like the other transforms
            for ax in plan.mirror_axes:
                if rng.random() < 0.5 * self.strength:
                    x, y, m = np.flip(x, ax + 1), np.flip(y, ax), np.flip(m, ax)
            if plan.rot90 and self.patch[-1] == self.patch[-2]:
                u = rng.random()
                k = int(rng.integers(4)) if u < self.strength else 0
                if k:
                    x, y, m = (np.rot90(x, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1)),
                               np.rot90(m, k, axes=(-2, -1)))
            x = self._intensity(np.ascontiguousarray(x), rng, self.strength)
        return (np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y),
                np.ascontiguousarray(m, dtype=np.float32))

    def _crop(self, case: PreparedCase, start: np.ndarray):
        shape = np.array(case.label.shape)
        end = start + self.patch
        src = tuple(slice(max(0, s), min(e, n)) for s, e, n in zip(start, end, shape))
        dst = tuple(slice(max(0, -s), max(0, -s) + (sl.stop - sl.start)) for s, sl in zip(start, src))
        c = case.image.shape[0]
        # padding: 0 (the normalised mean), the value the sliding-window inferer pads with, so
        # that instance-norm statistics of padded patches agree between training and inference
        x = np.zeros((c,) + tuple(self.patch), np.float32)
        x[(slice(None),) + dst] = case.image[(slice(None),) + src]
        y = np.zeros(tuple(self.patch), case.label.dtype)
        y[dst] = case.label[src]
        m = np.zeros(tuple(self.patch), np.float32)
        m[dst] = 1.0 if case.roi is None or case.outside_in_loss else case.roi[src]
        return x, y, m

    @staticmethod
    def _intensity(x: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
        s = strength
        if rng.random() < 0.1 * s:
            x = x + rng.normal(0, math.sqrt(rng.uniform(0, 0.1)), x.shape).astype(np.float32)
        if rng.random() < 0.2 * s:
            sd = rng.uniform(0.5, 1.0)
            x = np.stack([ndi.gaussian_filter(ch, sd) for ch in x])
        if rng.random() < 0.15 * s:
            x = x * rng.uniform(0.75, 1.25)
        if rng.random() < 0.15 * s:
            f = rng.uniform(0.75, 1.25)
            mean = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True)
            x = (x - mean) * f + mean
        if rng.random() < 0.3 * s:
            g = rng.uniform(0.7, 1.5)
            lo = x.min(axis=tuple(range(1, x.ndim)), keepdims=True)
            rngs = x.max(axis=tuple(range(1, x.ndim)), keepdims=True) - lo + 1e-7
            x = np.power((x - lo) / rngs, g) * rngs + lo
        return x.astype(np.float32, copy=False)


class Prefetcher:
    """Produce ``sampler.batch(step)`` for ``step`` in ``[start, stop)`` in background threads.

    The order and content are those of a sequential loop (each batch depends only on its
    step), so prefetching never changes results.

    Parameters
    ----------
    sampler : PatchSampler
    start, stop : int
        The steps to produce.
    workers : int
        Background threads (0: each batch is made in the iterating thread when asked for).
    depth : int, optional
        Batches made ahead (default: ``max(4, 2 * workers)``).
    """

    def __init__(self, sampler: PatchSampler, start: int, stop: int, *, workers: int = 2,
                 depth: int | None = None) -> None:
        self.sampler = sampler
        self.next = start
        self.stop = stop
        workers = max(0, workers)
        # workers == 0: batches are made in the training thread, one at a time (no threads)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medseg-aug") if workers else None
        self.queue: list[Future] = []
        self.depth = depth if depth is not None else max(4, 2 * workers)  # keep every worker busy
        self._fill()

    def _fill(self) -> None:
        while self.pool is not None and len(self.queue) < self.depth and self.next < self.stop:
            self.queue.append(self.pool.submit(self.sampler.batch, self.next))
            self.next += 1

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if self.pool is None:
            while self.next < self.stop:
                self.next += 1
                yield self.sampler.batch(self.next - 1)
            return
        try:
            while self.queue:
                fut = self.queue.pop(0)
                self._fill()
                yield fut.result()
        finally:
            self.close()

    def close(self) -> None:
        """Cancel the batches not yet made and stop the threads."""
        for f in self.queue:
            f.cancel()
        self.queue.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
