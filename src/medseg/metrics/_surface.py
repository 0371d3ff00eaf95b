"""The engine under [`medseg.metrics.distance`][]: surface extraction and exact nearest-surface search.

Speed: the masks are cropped to their joint bounding box and the surfaces found with
shifted ANDs. Distances are then found without a distance transform: for every surface
voxel, the other surface is probed at integer offsets in order of increasing physical
length inside a small ellipsoidal ball (about 150 voxels), so the first hit *is* the exact
nearest distance; only voxels with nothing inside the ball go to a k-d tree. The result is
exact, not approximate (see ``benchmarks/bench_metrics.py``). From a joint bounding box of
10^6 voxels on, the two surfaces and then the two directions are computed in two threads
(``MEDSEG_NUM_THREADS=1`` keeps it to one); the result does not depend on it.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["surface", "directed_distances"]

_MAX_OFFSETS = 150  # voxels in the exact-search ball before falling back to a k-d tree
_THREAD_MIN_VOXELS = 1_000_000  # joint bounding box size from which the work is split over two threads
_POOL: ThreadPoolExecutor | None = None


def _bbox(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of a 2D/3D boolean mask as slices (``None`` when empty).

    Reduces over the leading axis first (contiguous, fast) instead of once per axis.
    """
    vectors: tuple[np.ndarray, ...]
    if mask.ndim == 3:
        plane: np.ndarray = np.any(mask, axis=0)
        lead: np.ndarray = np.any(mask.reshape(mask.shape[0], -1), axis=1)
        vectors = (lead, np.any(plane, axis=1), np.any(plane, axis=0))
    else:
        vectors = tuple(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != ax)) for ax in range(mask.ndim))
    out = []
    for v in vectors:
        hit = np.flatnonzero(v)
        if hit.size == 0:
            return None
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(out)


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def surface(mask: np.ndarray) -> np.ndarray:
    """Surface voxels of a boolean mask: ``mask & ~erode(mask)`` with face connectivity.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape ``(y, x)`` or ``(z, y, x)``

    Returns
    -------
    numpy.ndarray of bool, same shape
        Voxels outside the array count as background.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(surface(m).sum())
    8
    """
    m = np.asarray(mask, dtype=bool)
    p = np.pad(m, 1)
    inner = m.copy()
    centre = tuple(slice(1, -1) for _ in range(m.ndim))
    for ax in range(m.ndim):
        for lo, hi in ((0, -2), (2, None)):
            sl = list(centre)
            sl[ax] = slice(lo, hi)
            inner &= p[tuple(sl)]
    return m & ~inner


def _offsets(spacing: np.ndarray, max_offsets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer offsets within an ellipsoidal ball (in mm) sorted by length; return (offsets, lengths, half widths).

    The radius ``R`` is chosen so the ball holds about ``max_offsets`` voxels, and is at
    least the largest spacing (every face neighbour is included).
    """
    d = spacing.size
    unit = np.pi if d == 2 else 4.0 / 3.0 * np.pi
    radius = max(float((max_offsets * np.prod(spacing) / unit) ** (1.0 / d)), float(spacing.max()))
    half = np.floor(radius / spacing + 1e-9).astype(int)
    grids = np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij")
    off = np.stack([g.ravel() for g in grids], axis=1)
    length = np.sqrt(((off * spacing) ** 2).sum(axis=1))
    keep = length <= radius
    order = np.argsort(length[keep], kind="stable")
    return off[keep][order], length[keep][order], half


def _directed(src: np.ndarray, dst: np.ndarray, spacing: np.ndarray, offsets: np.ndarray,
              lengths: np.ndarray, idx: np.ndarray, dst_idx: np.ndarray) -> np.ndarray:
    """Exact distance from each True voxel of ``src`` to the nearest True voxel of ``dst``.

    ``src``/``dst`` are equally padded surface arrays (padding >= the offsets' reach);
    ``idx``/``dst_idx`` are their flat True indices (computed once by the caller).
    Offsets are tried in order of increasing length, so the first hit is the exact nearest
    neighbour within the ball; voxels with no hit inside the ball (farther than its
    radius) are resolved exactly with a k-d tree on ``dst``'s voxel centres.
    """
    out = np.empty(idx.size, dtype=np.float64)
    if idx.size == 0:
        return out
    if dst_idx.size == 0:
        out.fill(np.inf)
        return out
    dflat = dst.ravel()
    strides = np.array([int(np.prod(src.shape[a + 1:])) for a in range(src.ndim)], dtype=np.int64)
    remaining = np.arange(idx.size)
    cur = idx
    for off, length in zip(offsets @ strides, lengths):
        hit = dflat[cur + off]
        n_hit = np.count_nonzero(hit)  # a popcount: much cheaper than hit.any() on large arrays
        if n_hit:
            if n_hit == remaining.size:
                out[remaining] = length
                return out
            out[remaining[hit]] = length
            miss = ~hit
            remaining, cur = remaining[miss], cur[miss]
    from scipy.spatial import cKDTree  # deferred: SciPy's spatial module, only for far-away voxels

    far = np.stack(np.unravel_index(cur, src.shape), axis=1).astype(np.float64) * spacing
    pts = np.stack(np.unravel_index(dst_idx, dst.shape), axis=1).astype(np.float64) * spacing
    tree = cKDTree(pts, leafsize=32, balanced_tree=False,
                   compact_nodes=False)
    out[remaining] = tree.query(far, k=1)[0]
    return out


def directed_distances(pm: np.ndarray, tm: np.ndarray, sp: np.ndarray,
                       m: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances from each surface voxel of ``pm`` to the surface of ``tm``, and back.

    Parameters
    ----------
    pm, tm : numpy.ndarray of bool, shape ``(y, x)`` or ``(z, y, x)``
        Prediction and truth masks of one class.
    sp : numpy.ndarray of float64, shape ``(ndim,)``
        Voxel size in mm per axis.
    m : numpy.ndarray of bool, same shape, or None
        Region of interest: only surface voxels inside it are kept.

    Returns
    -------
    pred_to_truth : numpy.ndarray of float64, shape ``(|∂P|,)``
    truth_to_pred : numpy.ndarray of float64, shape ``(|∂T|,)``
        ``inf`` where the other surface is empty.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((3, 5), bool); a[1, 0:3] = True      # three pixels in a row
    >>> b = np.zeros((3, 5), bool); b[1, 0:2] = True      # the first two of them
    >>> [d.tolist() for d in directed_distances(a, b, np.array([1.0, 1.0]), None)]
    [[0.0, 0.0, 1.0], [0.0, 0.0]]
    >>> [d.tolist() for d in directed_distances(a, np.zeros_like(a), np.array([1.0, 1.0]), None)]
    [[inf, inf, inf], []]
    """
    box = _union(_bbox(pm), _bbox(tm))
    if box is None:
        return np.zeros(0), np.zeros(0)
    offsets, lengths, half = _offsets(sp, _MAX_OFFSETS)
    pad = [(int(h), int(h)) for h in half]

    def prepare(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        surf = surface(mask[box])
        if m is not None:
            surf &= m[box]
        surf = np.pad(surf, pad)
        return surf, np.flatnonzero(surf)

    # The two masks, then the two directions, are independent: on large volumes they run in
    # two threads (NumPy's gathers and SciPy's k-d tree release the GIL), ~1.7x on 2 cores.
    pool = _pool() if int(np.prod([s.stop - s.start for s in box])) >= _THREAD_MIN_VOXELS else None
    if pool is None:
        (sp_, ia), (st_, ib) = prepare(pm), prepare(tm)
        return (_directed(sp_, st_, sp, offsets, lengths, ia, ib),
                _directed(st_, sp_, sp, offsets, lengths, ib, ia))
    fa, fb = pool.submit(prepare, pm), pool.submit(prepare, tm)
    (sp_, ia), (st_, ib) = fa.result(), fb.result()
    da = pool.submit(_directed, sp_, st_, sp, offsets, lengths, ia, ib)
    db = pool.submit(_directed, st_, sp_, sp, offsets, lengths, ib, ia)
    return da.result(), db.result()


def _pool() -> ThreadPoolExecutor | None:
    """A shared two-thread pool, or ``None`` on a single-core machine or when the environment
    variable ``MEDSEG_NUM_THREADS`` is 1."""
    global _POOL

    try:
        limit = int(os.environ.get("MEDSEG_NUM_THREADS", "0")) or (os.cpu_count() or 1)
    except ValueError:
        limit = os.cpu_count() or 1
    if limit < 2:
        return None
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="medseg-surface")
    return _POOL
