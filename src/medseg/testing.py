"""Seeded synthetic phantoms with exact ground truth, for tests, demos and benchmarks.

* `disc_phantom` — the smallest useful case: bright blobs on a noisy background
  (2D or 3D), binary truth.
* `fundus_phantom` — a colour fundus-like photograph: circular field of view with
  vignetting, an optic disc, a branching vessel tree whose calibre narrows with depth,
  a red-free contrast like real fundus images (vessels darkest in green), noise. Truth is
  the vessel tree; the FOV mask is returned as ROI.
* `head_phantom` — an MRI-like 3D head: skull/scalp, CSF, grey matter, white matter
  and a lesion, with a smooth bias field, partial-volume blur and Rician-like noise.
  Truth has classes 1 = CSF, 2 = grey matter, 3 = white matter, 4 = lesion.
* `t1_head_phantom` — a clinical-looking T1 head with thick slices: scalp fat brighter
  than white matter, dark skull and CSF, brain, an enhancing lesion near the cortex, partial
  volume across the slices; truth labels the layers (for brain masks).
* `make_dataset` — writes a small dataset of any of these to disk in a chosen layout.

Everything is a pure function of ``seed``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from medseg.errors import ConfigError
from medseg.image import Image
from medseg.io.writing import write_dataset

__all__ = ["disc_phantom", "fundus_phantom", "head_phantom", "t1_head_phantom", "make_dataset", "HEAD_CLASSES",
           "T1_HEAD_LAYERS"]

HEAD_CLASSES = {0: "background", 1: "csf", 2: "grey_matter", 3: "white_matter", 4: "lesion"}
"""Truth labels of `head_phantom`."""
T1_HEAD_LAYERS = {0: "air", 1: "scalp", 2: "skull", 3: "csf", 4: "brain", 5: "lesion"}
"""Truth labels of `t1_head_phantom`."""


def disc_phantom(shape: tuple[int, ...] = (96, 96), *, n_objects: int = 3, noise: float = 0.15,
                 seed: int = 0, spacing: tuple[float, ...] | None = None) -> tuple[Image, Image]:
    """Bright discs/balls (intensity ~1) on a dark background (~0) with Gaussian noise.

    Returns ``(image, truth)``; ``truth`` is 0/1 uint8 on the same grid.

    Examples
    --------
    >>> img, truth = disc_phantom((64, 64), seed=1)
    >>> img.shape, int(truth.array.max())
    ((64, 64), 1)
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    truth = np.zeros(shape, dtype=bool)
    lo = min(shape)
    for _ in range(n_objects):
        r = rng.uniform(0.08, 0.16) * lo
        c = [rng.uniform(r + 1, s - r - 1) for s in shape]
        d2 = sum((g - ci) ** 2 for g, ci in zip(grids, c))
        truth |= d2 <= r * r
    img = truth.astype(np.float32)
    img = ndi.gaussian_filter(img, 0.8)
    img += rng.normal(0, noise, shape).astype(np.float32)
    sp = spacing or (1.0,) * len(shape)
    return Image(img.astype(np.float32), sp), Image(truth.astype(np.uint8), sp)


def _draw_segment(canvas: np.ndarray, p0, p1, radius: float) -> None:
    """Rasterise a thick line segment (capsule) into ``canvas`` (in place, max)."""
    h, w = canvas.shape
    y0, x0 = p0
    y1, x1 = p1
    pad = radius + 2
    ya, yb = int(max(0, min(y0, y1) - pad)), int(min(h, max(y0, y1) + pad + 1))
    xa, xb = int(max(0, min(x0, x1) - pad)), int(min(w, max(x0, x1) + pad + 1))
    if ya >= yb or xa >= xb:
        return
    yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
    dy, dx = y1 - y0, x1 - x0
    L2 = dy * dy + dx * dx
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / L2, 0, 1) if L2 > 0 else np.zeros_like(yy)
    dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
    # anti-aliased coverage: 1 inside, linear ramp over one pixel
    cov = np.clip(radius + 0.5 - dist, 0, 1)
    np.maximum(canvas[ya:yb, xa:xb], cov, out=canvas[ya:yb, xa:xb])


def _grow_tree(canvas, rng, start, angle, radius, length, depth, fov_c, fov_r):
    y, x = start
    for _ in range(int(length)):
        step = max(2.0, radius * 1.5)
        angle += rng.normal(0, 0.12)
        ny, nx = y + step * np.sin(angle), x + step * np.cos(angle)
        if np.hypot(ny - fov_c[0], nx - fov_c[1]) > fov_r * 1.02:
            return
        _draw_segment(canvas, (y, x), (ny, nx), radius)
        y, x = ny, nx
        if depth > 0 and rng.random() < 0.09:
            side = rng.choice([-1, 1])
            _grow_tree(canvas, rng, (y, x), angle + side * rng.uniform(0.5, 1.1), radius * rng.uniform(0.6, 0.8),
                       length * rng.uniform(0.5, 0.8), depth - 1, fov_c, fov_r)
            radius *= 0.9
            if radius < 0.6:
                return


def fundus_phantom(shape: tuple[int, int] = (256, 256), *, seed: int = 0, noise: float = 0.03
                   ) -> tuple[Image, Image, Image]:
    """A colour fundus-like image with a vessel tree.

    Returns ``(image, vessels, fov)``: ``image`` is RGB uint8 ``(3, H, W)``, ``vessels``
    and ``fov`` are 0/1 uint8 ``(H, W)``.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    cy, cx = h / 2, w / 2
    fov_r = 0.46 * min(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rr = np.hypot(yy - cy, xx - cx)
    fov = rr <= fov_r
    # optic disc on one side
    side = rng.choice([-1, 1])
    disc_c = (cy + rng.uniform(-0.08, 0.08) * h, cx + side * 0.22 * w)
    disc_r = 0.07 * min(h, w)
    canvas = np.zeros(shape, np.float32)
    base_r = max(1.2, 0.011 * min(h, w))
    for k in range(4):
        ang = np.arctan2(0, -side) + (k - 1.5) * 0.9 + rng.normal(0, 0.15)
        _grow_tree(canvas, rng, disc_c, ang, base_r * rng.uniform(0.85, 1.1), 0.09 * min(h, w) * 2.2, 4, (cy, cx),
                   fov_r)
    vessels = (canvas >= 0.5) & fov
    # background: orange-red retina with vignetting and smooth texture
    vign = np.clip(1.0 - 0.45 * (rr / fov_r) ** 2.5, 0.2, 1.0)
    tex = ndi.gaussian_filter(rng.normal(0, 1, shape), 0.05 * min(h, w))
    tex = tex / (np.abs(tex).max() + 1e-9)
    disc = np.exp(-(((yy - disc_c[0]) ** 2 + (xx - disc_c[1]) ** 2) / (2 * disc_r ** 2)))
    base = np.stack([0.75 + 0.05 * tex, 0.38 + 0.05 * tex, 0.16 + 0.03 * tex]) * vign
    base += np.array([0.2, 0.35, 0.3])[:, None, None] * disc
    contrast = np.array([0.18, 0.45, 0.35])[:, None, None]  # vessels darkest in green
    img = base * (1 - contrast * canvas)
    img += rng.normal(0, noise, img.shape)
    img = ndi.gaussian_filter(img, (0, 0.6, 0.6))
    img = np.where(fov[None], img, 0.02)
    img = np.clip(img * 255, 0, 255).astype(np.uint8)
    return (Image(img, (1.0, 1.0), meta={"rgb": True}), Image(vessels.astype(np.uint8), (1.0, 1.0)),
            Image(fov.astype(np.uint8), (1.0, 1.0)))


def head_phantom(shape: tuple[int, int, int] = (48, 64, 64), *, seed: int = 0,
                 spacing: tuple[float, float, float] = (2.0, 1.0, 1.0), noise: float = 0.04,
                 lesion: bool = True) -> tuple[Image, Image]:
    """An MRI-like T1 head volume with tissue classes and a lesion.

    Returns ``(image, truth)``: float32 image and uint8 truth with classes
    1 CSF, 2 grey matter, 3 white matter, 4 lesion (see `HEAD_CLASSES`).
    """
    rng = np.random.default_rng(seed)
    d, h, w = shape
    sp = np.asarray(spacing, dtype=float)
    zz, yy, xx = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, sp)], indexing="ij")
    ext = np.array(shape) * sp / 2
    a, b, c = ext[0] * 0.85, ext[1] * 0.85, ext[2] * 0.80
    # smooth random deformation of the radius makes every head different
    bumps = ndi.gaussian_filter(rng.normal(0, 1, shape), 4) * 6.0
    r = np.sqrt((zz / a) ** 2 + (yy / b) ** 2 + (xx / c) ** 2) + bumps * 0.02
    head = r <= 1.0
    brain = r <= 0.82
    csf_outer = brain & (r > 0.76)
    wm_core = r <= 0.55 + 0.08 * np.sin(3 * np.arctan2(yy, xx)) * np.cos(2 * np.arctan2(zz, xx))
    truth = np.zeros(shape, np.uint8)
    truth[brain] = 2
    truth[wm_core & brain] = 3
    truth[csf_outer] = 1
    # ventricles
    vent = ((zz / (a * 0.22)) ** 2 + ((yy - 0.05 * b) / (b * 0.36)) ** 2
            + ((np.abs(xx) - 0.13 * c) / (c * 0.10)) ** 2) <= 1
    truth[vent & brain] = 1
    if lesion:
        wm_idx = np.argwhere(truth == 3)
        centre = wm_idx[rng.integers(len(wm_idx))] * sp
        rad = rng.uniform(0.10, 0.16) * ext.min()
        grid = np.stack([zz, yy, xx], -1) + ext - sp / 2
        les = np.sum(((grid - centre) / (rad * np.array([1.0, 1.2, 0.9]))) ** 2, -1) <= 1
        truth[les & brain & ~vent] = 4
    intens = {0: 0.0, 1: 0.15, 2: 0.55, 3: 0.8, 4: 0.35}
    img = np.zeros(shape, np.float32)
    for k, v in intens.items():
        img[truth == k] = v
    img[head & ~brain] = 0.95  # scalp fat is bright on T1
    img[head & (r > 0.86) & (r < 0.93)] = 0.08  # skull
    img = ndi.gaussian_filter(img, 0.7 / (sp / sp.min()))  # partial volume
    bias = 1 + 0.15 * (zz / ext[0]) + 0.1 * (xx / ext[2])
    img = img * bias
    n1, n2 = rng.normal(0, noise, shape), rng.normal(0, noise, shape)
    img = np.sqrt((img + n1) ** 2 + n2 ** 2).astype(np.float32) * 1000  # Rician, scanner-like units
    direction = np.eye(3)
    origin = tuple(-e for e in ext)
    return (Image(img, tuple(sp), origin, direction, meta={"modality": "MR"}),
            Image(truth, tuple(sp), origin, direction))


def t1_head_phantom(shape: tuple[int, int, int] = (22, 150, 130), *,
                    spacing: tuple[float, float, float] = (6.5, 1.2, 1.2), seed: int = 0, noise: float = 0.03,
                    lesion: bool = True) -> tuple[Image, Image]:
    """A T1-weighted head MR with thick slices, as clinical series are, for brain-mask tests.

    From the skin inwards (mm): scalp 6 (skin, then fat 1.8x as bright as white matter; towards
    the face and neck up to 22, with muscle as grey as cortex under the fat), skull 6 (dark,
    with bright marrow in its middle), CSF 1-4 (dark), cortex 4 (grey matter, 0.8),
    white matter (1.0) with dark ventricles, and an enhancing lesion (bright rim as bright as
    fat, dark core, 10 mm radius) 30 mm under the skin. The head is an ellipsoid (168 x 136 mm
    in-plane) whose vertex lies in the top slice; each slice averages five thin ones (partial volume: the vertex and the
    scalp are cut obliquely); the receive coils brighten the periphery (+40 % at the skin, fading
    over 25 mm), a smooth bias field tilts the rest, and Rician noise.

    Parameters
    ----------
    shape : tuple of int
        ``(slices, y, x)``.
    spacing : tuple of float
        Voxel size in mm (default: 6.5 mm slices, 1.2 mm pixels).
    seed : int
        Random seed (bias, noise, CSF thickness, lesion position).
    noise : float
        Rician noise level relative to white matter.
    lesion : bool
        Add the lesion.

    Returns
    -------
    image : Image
        float32, white matter near 1000, ``meta["modality"] = "MR"``.
    truth : Image
        uint8 labels of `T1_HEAD_LAYERS` (0 air, 1 scalp, 2 skull, 3 CSF, 4 brain, 5 lesion),
        those of each slice's centre.

    Examples
    --------
    >>> img, truth = t1_head_phantom(seed=1)
    >>> img.shape, img.spacing, sorted(np.unique(truth.array).tolist())
    ((22, 150, 130), (6.5, 1.2, 1.2), [0, 1, 2, 3, 4, 5])
    """
    rng = np.random.default_rng(seed)
    sub = 5
    n, h, w = shape
    sp = np.asarray(spacing, dtype=float)
    zf = (np.arange(n * sub) + 0.5) * sp[0] / sub  # thin slices, mm from the bottom
    z = zf - (n * sp[0] - 98.0)  # the ellipsoid's 95 mm half-height: the vertex 3 mm below the top
    z = z[:, None, None]
    y = ((np.arange(h) - (h - 1) / 2) * sp[1])[None, :, None]
    x = ((np.arange(w) - (w - 1) / 2) * sp[2])[None, None, :]
    rho = np.sqrt((z / 95.0) ** 2 + (y / 84.0) ** 2 + (x / 68.0) ** 2)
    depth = np.sqrt(z ** 2 + y ** 2 + x ** 2) * (1 / np.maximum(rho, 1e-6) - 1)  # mm inside the surface
    csf = 1.0 + 3.0 * ndi.gaussian_filter(rng.random((n, h // 4 + 1, w // 4 + 1)), 1.5)
    csf = np.repeat(np.repeat(np.repeat(csf, sub, 0), 4, 1), 4, 2)[:, :h, :w]
    csf = 1.0 + 3.0 * (csf - csf.min()) / max(float(np.ptp(csf)), 1e-6)
    scalp = 6.0 + 16.0 * np.clip((-z - 10.0) / 50.0, 0.0, 1.0)  # thicker soft tissue towards the face and neck
    lab = np.zeros(depth.shape, np.uint8)
    lab[depth >= 0] = 1
    lab[depth >= scalp] = 2
    lab[depth >= scalp + 6] = 3
    lab[depth >= scalp + 6 + csf] = 4
    a = np.zeros(depth.shape, np.float32)
    d = depth - scalp  # mm under the skull's outer surface
    a[lab == 1] = np.select([depth[lab == 1] < 1.5, (depth[lab == 1] > 4) & (d[lab == 1] < -2)], [0.75, 0.7], 1.8)
    a[lab == 2] = np.where(np.abs(d[lab == 2] - 3) < 1.0, 1.0, 0.12)
    a[lab == 3] = 0.3
    brain = lab == 4
    a[brain] = np.where(d[brain] < 10 + csf[brain], 0.8, 1.0)
    vent = ((z - 5) / 30) ** 2 + (y / 32) ** 2 + ((np.abs(x) - 9) / 6) ** 2 <= 1
    a[vent & brain] = 0.3
    if lesion:
        ang = rng.uniform(0, 2 * np.pi)
        cy, cx = 60 * np.sin(ang), 48 * np.cos(ang)
        r0 = 84 * 68 / np.hypot(68 * np.sin(ang), 84 * np.cos(ang))  # head radius in that direction
        c = np.array([rng.uniform(-10, 20), *(np.array([cy, cx]) * (r0 - 30) / np.hypot(cy, cx))])
        d = np.sqrt((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2)
        les = (d <= 10) & (lab >= 3)
        lab[les] = 5
        a[les] = np.where(d[les] > 7, 1.6, 0.4)
    coil = 1 + 0.4 * np.exp(-np.maximum(depth, 0) / 25.0)  # receive coils: the periphery is brighter
    a = (a * coil).reshape(n, sub, h, w).mean(1)  # thick slices
    lab = lab[sub // 2::sub]
    zc = (np.arange(n) - (n - 1) / 2)[:, None, None] / n
    a = a * (1 + 0.2 * zc + 0.1 * x / 68.0)
    n1, n2 = rng.normal(0, noise, a.shape), rng.normal(0, noise, a.shape)
    img = (np.sqrt((a + n1) ** 2 + n2 ** 2) * 1000).astype(np.float32)
    return Image(img, tuple(sp), meta={"modality": "MR"}), Image(lab, tuple(sp))


def make_dataset(out: str | Path, *, kind: str = "disc", n: int = 6, layout: str = "folders",
                 seed: int = 0, shape: tuple[int, ...] | None = None, suffix: str | None = None) -> Path:
    """Write a synthetic dataset to ``out`` and return its root.

    ``kind``: ``disc`` (2D), ``disc3d``, ``fundus`` (2D RGB with an ROI), ``head`` (3D, tissue
    classes) or ``brain`` (a thick-slice T1 head, `t1_head_phantom`, with its binary brain mask).
    ``layout``: ``folders`` (images/, labels/, roi/), ``msd`` or ``npy`` (2D kinds only).
    """
    root = Path(out)
    cases = []
    for i in range(n):
        s = seed * 1000 + i
        if kind == "disc":
            img, lab = disc_phantom(shape or (96, 96), seed=s)
            roi = None
        elif kind == "disc3d":
            img, lab = disc_phantom(shape or (32, 48, 48), seed=s, spacing=(2.0, 1.0, 1.0))
            roi = None
        elif kind == "fundus":
            img, lab, roi = fundus_phantom(shape or (256, 256), seed=s)
        elif kind == "head":
            img, lab = head_phantom(shape or (40, 56, 56), seed=s)
            roi = None
        elif kind == "brain":  # a thick-slice T1 head and its binary brain mask (skull stripping)
            img, lab = t1_head_phantom(shape or (22, 150, 130), seed=s)
            lab = lab.with_array((lab.array >= 4).astype(np.uint8))
            roi = None
        else:
            raise ConfigError(f"unknown phantom kind '{kind}'; choose disc, disc3d, fundus, head or brain")
        cases.append((f"case_{i:03d}", img, lab, roi))
    labels = {"head": HEAD_CLASSES, "brain": {0: "background", 1: "brain"},
              "fundus": {0: "background", 1: "vessel"}}.get(kind, {0: "background", 1: "foreground"})
    # the MSD layout names each channel: the head phantoms are T1-weighted MR
    channels = ["T1"] if kind in ("head", "brain") and layout == "msd" else None
    return write_dataset(cases, root, layout=layout, suffix=suffix, label_names=labels, channel_names=channels)


def shared_data(*parts: str) -> Path | None:
    """Path of the project's real development data (``../shared/data`` beside the repo),
    or ``None`` when it is absent. Benchmarks and real-data tests skip on ``None``.

    The folder can be moved with ``MEDSEG_SHARED_DATA`` (tests and benchmarks only).
    """
    import os

    here = Path(__file__).resolve()
    candidates = []
    if os.environ.get("MEDSEG_SHARED_DATA"):
        candidates.append(Path(os.environ["MEDSEG_SHARED_DATA"]))
    for up in here.parents:
        candidates.append(up.parent / "shared" / "data")
        if (up / "pyproject.toml").is_file():
            candidates.append(up.parent / "shared" / "data")
            break
    for c in candidates:
        p = c.joinpath(*parts)
        if p.exists():
            return p
    return None
