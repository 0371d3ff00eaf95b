"""Feature stacks computed block-wise: `feature_stack`, `feature_rows`,
`sample_features` and the block iterators.

`feature_stack` returns ``(F, *spatial)`` float32 features of an `Image`;
`iter_feature_blocks` yields them block by block (with a halo wide enough for every
filter, so the values equal the one-piece computation) so that a large 3D volume's stack
never exceeds ``max_memory_mb`` in working memory; `sample_features` gathers the
features of chosen voxels the same way. What to compute is a
[`FeatureConfig`][medseg.features.config.FeatureConfig].
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from medseg.errors import InputError
from medseg.features.config import FeatureConfig, feature_names, normalise_channels, robust_range
from medseg.features.context import FEATURES, FeatureContext
from medseg.image import Image

log = logging.getLogger(__name__)

__all__ = [
    "feature_blocks",
    "feature_rows",
    "feature_stack",
    "iter_feature_blocks",
    "iter_feature_rows",
    "sample_features",
]


def _halo(image: Image, config: FeatureConfig) -> np.ndarray:
    """The widest halo (voxels per axis) of ``config``'s features on ``image``'s grid."""
    ctx = FeatureContext(np.zeros((1,) * image.ndim, np.float32), image.spacing, config.sigmas)
    return np.max([FEATURES.get(f).halo(ctx) for f in config.features], axis=0)


def _plan_blocks(shape: Sequence[int], halo: np.ndarray, max_voxels: int) -> list[tuple[slice, ...]]:
    core = np.array(shape, dtype=int)

    def padded(c: np.ndarray) -> int:
        return int(np.prod(np.minimum(c + 2 * halo, shape)))

    while padded(core) > max_voxels:
        best, best_vol = None, padded(core)
        for ax in np.flatnonzero(core > 8):  # halve the axis that shrinks the padded block most
            trial = core.copy()
            trial[ax] = int(np.ceil(trial[ax] / 2))
            if padded(trial) < best_vol:
                best, best_vol = trial, padded(trial)
        if best is None:
            break
        core = best
    if np.prod(np.minimum(core + 2 * halo, shape)) > max_voxels:
        log.warning("feature blocks exceed the memory bound (halo %s is large); using %s blocks",
                    halo.tolist(), core.tolist())
    starts = [range(0, s, c) for s, c in zip(shape, core)]
    return [tuple(slice(st, min(st + c, s)) for st, c, s in zip(p, core, shape))
            for p in itertools.product(*starts)]


def feature_blocks(image: Image, config: FeatureConfig | None = None, *, extra_features: int = 0,
                   max_memory_mb: float | None = None) -> list[tuple[slice, ...]]:
    """The core blocks `iter_feature_blocks` computes ``image``'s stack in (one block
    when the stack plus ``extra_features`` more per voxel fits the memory bound).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig, optional
        What to compute (``sigmas=None`` is resolved from ``image``).
    extra_features : int
        More float32 values per voxel the caller keeps alongside the stack.
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.

    Returns
    -------
    list of tuple of slice
        The blocks' core slices (without halo), tiling ``spatial``.

    Examples
    --------
    >>> from medseg.features.config import FeatureConfig
    >>> len(feature_blocks(Image(np.zeros((64, 64))), FeatureConfig(sigmas=(1.0,))))
    1
    """
    config = (config or FeatureConfig()).resolve(image)
    n_chan = len(config.check_channels(image))
    n_feat = len(feature_names(image, config)) + int(extra_features)
    budget = (max_memory_mb or config.max_memory_mb) * 2**20
    workers = max(1, min(n_chan, os.cpu_count() or 1))
    per_voxel = 4 * (n_feat + workers * (len(config.sigmas) * (3 + 3 * image.ndim) + 8))
    return _plan_blocks(image.shape, _halo(image, config), max(int(budget // per_voxel), 1))


def _iter_block_parts(image: Image, config: FeatureConfig, *, max_memory_mb: float | None = None,
                      pick: Callable[[tuple[slice, ...]], np.ndarray] | None = None
                      ) -> Iterator[tuple[tuple[slice, ...], list[np.ndarray]]]:
    """Yield ``(core_slices, parts)``: the block's feature maps, one array per feature (not
    stacked, so callers copy each value once).

    With ``pick``, ``pick(core)`` gives flat indices into the core block (C order) and each
    part is the 1D array of the feature at those voxels, gathered by the worker threads;
    blocks where it gives no index are skipped without computing anything."""
    config = config.resolve(image)
    chans = normalise_channels(image, config)
    workers = max(1, min(len(chans) * len(config.features), os.cpu_count() or 1))
    halo = _halo(image, config)
    ranges = []
    for a in chans:
        lo, hi = robust_range(a)
        ranges.append((lo, max(hi - lo, 1e-6)))

    def block_parts(outer: tuple[slice, ...], inner: tuple[slice, ...], flat: np.ndarray | None
                    ) -> list[np.ndarray]:
        # one task per (channel, filter), run by `workers` threads in order; filters of a
        # channel share its context (smoothed copies are computed once, see
        # FeatureContext.cached), which is dropped when the channel's last filter is done so
        # at most about `workers` contexts are alive
        tasks = [(k, f) for k in range(len(chans)) for f in config.features]
        contexts: dict[int, FeatureContext] = {}
        left = {k: len(config.features) for k in range(len(chans))}
        guard = threading.Lock()

        def run(task: tuple[int, str]) -> list[np.ndarray]:
            k, f = task
            with guard:
                if k not in contexts:
                    lo, rng = ranges[k]
                    contexts[k] = FeatureContext(np.ascontiguousarray(chans[k][outer]), image.spacing,
                                                 config.sigmas, value_range=rng, value_min=lo,
                                                 ridges=config.ridges)
                ctx = contexts[k]
            if flat is None:
                out = [np.ascontiguousarray(arr[inner], dtype=np.float32) for _, arr in FEATURES.get(f)(ctx)]
            else:
                out = [np.take(np.ascontiguousarray(arr, dtype=np.float32).reshape(-1), flat)
                       for _, arr in FEATURES.get(f)(ctx)]
            with guard:
                left[k] -= 1
                if not left[k]:
                    del contexts[k]
            return out

        if workers > 1:  # SciPy's filters and NumPy's loops release the GIL
            with ThreadPoolExecutor(workers) as ex:
                return [p for res in ex.map(run, tasks) for p in res]
        return [p for t in tasks for p in run(t)]

    for core in feature_blocks(image, config, max_memory_mb=max_memory_mb):
        outer = tuple(slice(max(c.start - h, 0), min(c.stop + h, s)) for c, h, s in zip(core, halo, image.shape))
        inner = tuple(slice(c.start - o.start, c.stop - o.start) for c, o in zip(core, outer))
        flat = None
        if pick is not None:
            flat = np.asarray(pick(core), dtype=np.int64)
            if not flat.size:
                continue
            if outer != core:  # core-local -> indices into the block with its halo
                core_shape = tuple(sl.stop - sl.start for sl in core)
                local = np.unravel_index(flat, core_shape)
                flat = np.ravel_multi_index(tuple(c + sl.start for c, sl in zip(local, inner)),
                                            tuple(sl.stop - sl.start for sl in outer))
        yield core, block_parts(outer, inner, flat)


def iter_feature_blocks(image: Image, config: FeatureConfig | None = None, *, max_memory_mb: float | None = None
                        ) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Yield ``(core_slices, features)`` with ``features`` shaped ``(F, *block_shape)``.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``, 2D or 3D.
    config : FeatureConfig, optional
        What to compute (``sigmas=None`` is resolved from ``image``).
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.

    Yields
    ------
    core_slices : tuple of slice
        The block's place in ``spatial``.
    features : numpy.ndarray
        ``(F, *block_shape)`` float32, equal to the same part of `feature_stack`.
    """
    for core, parts in _iter_block_parts(image, config or FeatureConfig(), max_memory_mb=max_memory_mb):
        yield core, np.stack(parts)


def iter_feature_rows(image: Image, config: FeatureConfig | None = None, mask: np.ndarray | None = None, *,
                      max_memory_mb: float | None = None
                      ) -> Iterator[tuple[tuple[slice, ...], np.ndarray, np.ndarray]]:
    """The features of the ``mask`` voxels, block by block.

    Blocks without a selected voxel are skipped without computing their features, and no
    ``(F, *block_shape)`` stack is built (the feature maps are gathered one by one).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig, optional
        What to compute.
    mask : numpy.ndarray, optional
        Boolean, shape ``spatial``; default: every voxel.
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.

    Yields
    ------
    core_slices : tuple of slice
        The block's place in ``spatial``.
    selected : numpy.ndarray
        Boolean ``mask`` within the block's core (all true without a mask).
    rows : numpy.ndarray
        ``(F, n)`` float32 features of the block's ``n`` selected voxels in C order.
    """
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != image.shape:
            raise InputError(f"mask shape {mask.shape} does not match the image shape {image.shape}")
    pick = None if mask is None else (lambda core: np.flatnonzero(mask[core]))
    for core, parts in _iter_block_parts(image, config or FeatureConfig(), max_memory_mb=max_memory_mb,
                                         pick=pick):
        sel = np.ones(tuple(sl.stop - sl.start for sl in core), bool) if mask is None else mask[core]
        rows = np.stack([p.reshape(-1) for p in parts])
        yield core, sel, rows


def feature_rows(image: Image, config: FeatureConfig | None = None, mask: np.ndarray | None = None, *,
                 max_memory_mb: float | None = None) -> np.ndarray:
    """Features of the voxels where ``mask`` is true, computed block-wise like
    `iter_feature_blocks`: equal to ``feature_stack(image, config)[0][:, mask]``
    without building that stack.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig, optional
        What to compute.
    mask : numpy.ndarray, optional
        Boolean, shape ``spatial``; default: every voxel.
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.

    Returns
    -------
    numpy.ndarray
        ``(F, n)`` float32 for the ``n`` selected voxels in C order of the whole image.
    """
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != image.shape:
            raise InputError(f"mask shape {mask.shape} does not match the image shape {image.shape}")
        n_total = int(mask.sum())
    else:
        n_total = int(np.prod(image.shape))
    out = flat_all = None
    for core, sel, rows in iter_feature_rows(image, config, mask, max_memory_mb=max_memory_mb):
        if out is None:
            if rows.shape[1] == n_total:  # one block holds every selected voxel
                return rows
            out = np.empty((rows.shape[0], n_total), np.float32)
            flat_all = np.flatnonzero(mask) if mask is not None else None
        local = np.unravel_index(np.flatnonzero(sel), sel.shape)
        glob = np.ravel_multi_index(tuple(g + sl.start for g, sl in zip(local, core)), image.shape)
        out[:, glob if flat_all is None else np.searchsorted(flat_all, glob)] = rows
    if out is None:  # empty mask
        cfg = (config or FeatureConfig()).resolve(image)
        return np.empty((len(feature_names(image, cfg)), 0), np.float32)
    return out


def feature_stack(image: Image, config: FeatureConfig | None = None, *, max_memory_mb: float | None = None
                  ) -> tuple[np.ndarray, list[str]]:
    """Per-pixel/voxel features of ``image``.

    Parameters
    ----------
    image : Image
        ``(y, x)``/``(z, y, x)`` image, optionally with a leading channel axis.
    config : FeatureConfig, optional
        Features, physical scales, channels, normalisation (default: ``FeatureConfig()``).
    max_memory_mb : float, optional
        Working-memory bound per block (default ``config.max_memory_mb``).

    Returns
    -------
    features : numpy.ndarray
        ``(F, *image.shape)`` float32.
    names : list of str
        ``F`` feature names (``c{k}_`` prefixed for multi-channel images).

    Examples
    --------
    >>> from medseg.testing import disc_phantom
    >>> img, _ = disc_phantom((32, 32))
    >>> feats, names = feature_stack(img, FeatureConfig(features=("gaussian",), sigmas=(1, 2)))
    >>> feats.shape, names
    ((2, 32, 32), ['gaussian_s1', 'gaussian_s2'])
    """
    config = (config or FeatureConfig()).resolve(image)
    names = feature_names(image, config)
    out = np.empty((len(names), *image.shape), np.float32)
    for core, parts in _iter_block_parts(image, config, max_memory_mb=max_memory_mb):
        for i, p in enumerate(parts):
            out[(i, *core)] = p
    return out, names


def sample_features(image: Image, config: FeatureConfig, indices: np.ndarray, *,
                    max_memory_mb: float | None = None) -> np.ndarray:
    """Features of the voxels at flat ``indices``, block-wise (blocks holding none of them
    are not computed).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    config : FeatureConfig
        What to compute.
    indices : numpy.ndarray
        ``(n,)`` flat voxel indices into ``spatial`` (C order).
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.

    Returns
    -------
    numpy.ndarray
        ``(n, F)`` float32, row ``i`` the features of voxel ``indices[i]``.
    """
    config = config.resolve(image)
    indices = np.asarray(indices, dtype=np.int64)
    coords = np.unravel_index(indices, image.shape)
    out = np.empty((len(feature_names(image, config)), indices.size), np.float32)

    def inside(core: tuple[slice, ...]) -> np.ndarray:
        sel = np.ones(indices.size, bool)
        for c, sl in zip(coords, core):
            sel &= (c >= sl.start) & (c < sl.stop)
        return sel

    def pick(core: tuple[slice, ...]) -> np.ndarray:
        sel = inside(core)
        shape = tuple(sl.stop - sl.start for sl in core)
        return np.ravel_multi_index(tuple(c[sel] - sl.start for c, sl in zip(coords, core)), shape)

    for core, parts in _iter_block_parts(image, config, max_memory_mb=max_memory_mb, pick=pick):
        sel = inside(core)
        whole = bool(sel.all())
        for i, vals in enumerate(parts):
            if whole:
                out[i] = vals
            else:
                out[i, sel] = vals
    return out.T
