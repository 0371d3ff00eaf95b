"""Feature stacks: a serialisable :class:`FeatureConfig` and block-wise computation.

:func:`feature_stack` returns ``(F, *spatial)`` float32 features of an :class:`Image`;
:func:`iter_feature_blocks` yields them block by block (with a halo wide enough for every
filter, so the values equal the one-piece computation) so that a large 3D volume's stack
never exceeds ``max_memory_mb`` in working memory; :func:`sample_features` gathers the
features of chosen voxels the same way.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from medseg.config import from_dict, to_dict
from medseg.errors import ConfigError, InputError
from medseg.features.filters import FEATURES, FeatureContext, filter_halo
from medseg.image import Image

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FEATURES",
    "FeatureConfig",
    "default_sigmas",
    "feature_blocks",
    "feature_names",
    "feature_rows",
    "feature_stack",
    "iter_feature_blocks",
    "iter_feature_rows",
    "normalise_channels",
    "sample_features",
]

#: intensity, Gaussian smoothing, gradient magnitude, difference of Gaussians, Hessian
#: eigenvalues, the local standard deviation and the structure-tensor eigenvalues, at every
#: scale. DRIVE 5-fold random-forest F1: 0.7761 without the last two, 0.7779 with
#: ``local_std`` (a local contrast measure), 0.7805 with ``structure`` too (local orientation
#: coherence; 4 of 5 folds better at each step); the two cost ~0.25 s of feature time per
#: 565x584 RGB image on 2 cores (benchmarks/results/ml.md).
DEFAULT_FEATURES = ("intensity", "gaussian", "gradient", "dog", "hessian", "local_std", "structure")


@dataclass(frozen=True)
class FeatureConfig:
    """What to compute. Serialisable with :func:`medseg.config.to_dict` / :meth:`from_dict`.

    Attributes
    ----------
    features : tuple of str
        Names from :data:`medseg.features.FEATURES` (``medseg.features.FEATURES.names()``).
    sigmas : tuple of float or None
        Physical scales (mm; pixels when the image has unit spacing). ``None``: from the
        image's spacing, ``min(spacing) * (0.5, 1, 2, 4, 8)`` limited to a sixteenth of the
        smallest physical extent (see :func:`default_sigmas`).
    channels : tuple of int or None
        Channels to use; ``None``: all channels (features are computed per channel).
    normalise : {"percentile", "zscore", "none"}
        Per-image, per-channel intensity normalisation before filtering: ``percentile``
        maps the 1st..99th percentiles to 0..1; ``zscore`` subtracts the mean and divides
        by the standard deviation.
    ridges : {"both", "dark", "bright"}
        Polarity of the vesselness filters (``frangi``, ``sato``, ``meijering``).
    max_memory_mb : float
        Working-memory bound for one block of features; larger images are processed in
        blocks with a halo.
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    sigmas: tuple[float, ...] | None = None
    channels: tuple[int, ...] | None = None
    normalise: Literal["percentile", "zscore", "none"] = "percentile"
    ridges: Literal["both", "dark", "bright"] = "both"
    max_memory_mb: float = 1024.0

    def __post_init__(self) -> None:
        feats = tuple(self.features)
        if not feats:
            raise ConfigError("at least one feature is needed; available: " + ", ".join(FEATURES.names()))
        for f in feats:
            FEATURES.get(f)  # raises with a suggestion
        object.__setattr__(self, "features", feats)
        if self.sigmas is not None:
            sig = tuple(float(s) for s in self.sigmas)
            if not sig or any(not np.isfinite(s) or s <= 0 for s in sig):
                raise ConfigError(f"sigmas must be positive physical lengths, got {self.sigmas}")
            object.__setattr__(self, "sigmas", tuple(sorted(set(sig))))
        if self.channels is not None:
            object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.normalise not in ("percentile", "zscore", "none"):
            raise ConfigError(f"normalise must be percentile, zscore or none, got {self.normalise!r}")
        if self.ridges not in ("both", "dark", "bright"):
            raise ConfigError(f"ridges must be both, dark or bright, got {self.ridges!r}")
        if not self.max_memory_mb > 0:
            raise ConfigError(f"max_memory_mb must be positive, got {self.max_memory_mb}")

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        return from_dict(cls, data, what="feature configuration")

    def to_dict(self) -> dict:
        return to_dict(self)

    def resolve(self, image: Image) -> FeatureConfig:
        """The same configuration with ``sigmas`` fixed from ``image`` (when ``None``)."""
        self.check_channels(image)
        if self.sigmas is not None:
            return self
        return dataclasses.replace(self, sigmas=default_sigmas(image))

    def check_channels(self, image: Image) -> list[int]:
        """The channel indices used for ``image`` (error if a requested one is missing)."""
        n = image.n_channels
        if self.channels is None:
            return list(range(n))
        bad = [c for c in self.channels if not -n <= c < n]
        if bad:
            raise InputError(f"feature channels {list(self.channels)} requested but the image has {n} channel(s)")
        return [c % n for c in self.channels]


def default_sigmas(image: Image, n: int = 5) -> tuple[float, ...]:
    """Scales from the data: ``min(spacing) * 2**k``, ``k = -1..n-2`` (half a voxel to
    eight voxels by default), each at most a sixteenth of the smallest physical extent (at
    least one scale).

    The half-voxel scale is there for structures one or two voxels wide (thin vessels,
    membranes): the Hessian responds most to a ridge of width ``w`` at ``sigma ~ w / (2
    sqrt 3)`` (Lindeberg's ridge scale), and one voxel already blurs such a ridge into its
    neighbours. On DRIVE (5-fold random forest) it raised F1 from 0.7730 to 0.7761."""
    base = min(image.spacing)
    extent = min(s * sp for s, sp in zip(image.shape, image.spacing))
    sig = [base * 2.0 ** (k - 1) for k in range(n)]
    keep = tuple(s for s in sig if s <= extent / 16) or (base,)
    return keep


def _robust(a: np.ndarray) -> tuple[float, float]:
    flat = a.reshape(-1)
    if flat.size > 1_000_000:
        flat = flat[:: flat.size // 1_000_000]
    lo, hi = np.percentile(flat, [1, 99])
    return float(lo), float(hi)


def normalise_channels(image: Image, config: FeatureConfig) -> list[np.ndarray]:
    """Selected channels as float32 arrays, normalised per ``config.normalise``."""
    chans = config.check_channels(image)
    arr = image.channels_first()
    out = []
    for c in chans:
        a = arr[c].astype(np.float32)  # always a copy: inputs are never modified
        if config.normalise == "percentile":
            lo, hi = _robust(a)
            a -= lo
            a /= (hi - lo) if hi > lo else 1.0
        elif config.normalise == "zscore":
            m, sd = float(a.mean()), float(a.std())
            a -= m
            a /= sd if sd > 0 else 1.0
        out.append(a)
    return out


def feature_names(image: Image, config: FeatureConfig | None = None) -> list[str]:
    """Names of the features :func:`feature_stack` computes for ``image``."""
    config = (config or FeatureConfig()).resolve(image)
    chans = config.check_channels(image)
    dummy = FeatureContext(np.zeros((8,) * image.ndim, np.float32), image.spacing, config.sigmas,
                           ridges=config.ridges)
    per = [n for f in config.features for n, _ in FEATURES.get(f)(dummy)]
    prefixes = [f"c{c}_" for c in chans] if len(chans) > 1 else [""]
    return [p + n for p in prefixes for n in per]


def _halo(image: Image, config: FeatureConfig) -> np.ndarray:
    ctx = FeatureContext(np.zeros((1,) * image.ndim, np.float32), image.spacing, config.sigmas)
    return np.max([filter_halo(f, ctx) for f in config.features], axis=0)


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
    """The core blocks :func:`iter_feature_blocks` computes ``image``'s stack in (one block
    when the stack plus ``extra_features`` more per voxel fits the memory bound)."""
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
        lo, hi = _robust(a)
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
        2D/3D image, optionally with channels.
    config : FeatureConfig, optional
        What to compute (``sigmas=None`` is resolved from ``image``).
    max_memory_mb : float, optional
        Overrides ``config.max_memory_mb``.
    """
    for core, parts in _iter_block_parts(image, config or FeatureConfig(), max_memory_mb=max_memory_mb):
        yield core, np.stack(parts)


def iter_feature_rows(image: Image, config: FeatureConfig | None = None, mask: np.ndarray | None = None, *,
                      max_memory_mb: float | None = None
                      ) -> Iterator[tuple[tuple[slice, ...], np.ndarray, np.ndarray]]:
    """Yield ``(core_slices, selected, rows)`` block by block: ``selected`` is the boolean
    ``mask`` within the block's core (all true without a mask) and ``rows`` ``(F, n)`` the
    features of its ``n`` selected voxels in C order. Blocks without a selected voxel are
    skipped without computing their features, and no ``(F, *block_shape)`` stack is built
    (the feature maps are gathered one by one)."""
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
    """Features ``(F, n)`` of the ``n`` voxels where ``mask`` is true (all voxels without a
    mask), in C order of the whole image, computed block-wise like :func:`iter_feature_blocks`.
    Equal to ``feature_stack(image, config)[0][:, mask]`` without building that stack."""
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
    """Features ``(len(indices), F)`` of the voxels at flat ``indices`` (C order), block-wise
    (blocks holding none of them are not computed)."""
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
