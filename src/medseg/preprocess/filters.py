"""Denoising and bias correction: Gaussian, median, bilateral, non-local means,
anisotropic diffusion (SciPy/SimpleITK/scikit-image) and N4 (SimpleITK), and the noise
estimate (`noise_std`) that sets their data-derived defaults.

Scales are physical (mm; pixels at spacing 1). Each channel is filtered separately;
every filter maps an `Image` ``([C,] *spatial)`` to a new one of the
same shape and geometry. SimpleITK is imported by the filters that use it.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage as ndi

from medseg.errors import ConfigError
from medseg.image import Image
from medseg.postprocess import ellipsoid_footprint
from medseg.preprocess._util import as_image, float_array, per_channel

__all__ = ["anisotropic_diffusion", "bilateral", "gaussian", "median", "n4", "nlmeans", "noise_std"]

log = logging.getLogger(__name__)


def noise_std(a: np.ndarray) -> float:
    """Robust estimate of additive Gaussian noise: MAD of neighbour differences.

    Differences along the last axis remove smooth structure; the median absolute
    deviation ignores the few large differences at edges.

    Parameters
    ----------
    a : numpy.ndarray
        Intensities, any shape.

    Returns
    -------
    float
        ``sigma`` in intensity units (``0`` for a constant image).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_std(rng.normal(0, 2.0, (200, 200))), 1)
    2.0
    """
    d = np.diff(np.asarray(a, dtype=np.float64), axis=-1).ravel()
    if d.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def _sitk(a: np.ndarray, spacing):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(float_array(a).astype(np.float32, copy=False))
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    return img


def gaussian(image: Image, *, sigma: float = 1.0) -> Image:
    """Gaussian smoothing with standard deviation ``sigma`` in mm (per-axis in voxels).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    sigma : float
        Standard deviation in mm.

    Returns
    -------
    Image
        Same shape and geometry, float.

    Examples
    --------
    >>> import numpy as np
    >>> img = Image(np.eye(5), spacing=(1.0, 2.0))
    >>> round(float(gaussian(img, sigma=1).array.sum()), 6)
    5.0
    """
    if sigma < 0:
        raise ConfigError(f"gaussian sigma must be >= 0, got {sigma}")
    image = as_image(image)
    s = [sigma / sp for sp in image.spacing]
    return per_channel(image, lambda a: ndi.gaussian_filter(float_array(a), s))


def median(image: Image, *, radius: float = 1.0) -> Image:
    """Median filter over an ellipsoid of ``radius`` mm.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    radius : float
        Radius of the neighbourhood in mm.

    Returns
    -------
    Image
        Same shape, dtype and geometry.

    Examples
    --------
    >>> img = Image(np.array([[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]))
    >>> float(median(img, radius=1).array.max())
    0.0
    """
    if radius < 0:
        raise ConfigError(f"median radius must be >= 0, got {radius}")
    image = as_image(image)
    fp = ellipsoid_footprint(radius, image.spacing)
    return per_channel(image, lambda a: ndi.median_filter(a, footprint=fp))


def bilateral(image: Image, *, sigma_spatial: float = 2.0, sigma_color: float | None = None) -> Image:
    """Edge-preserving bilateral filter (SimpleITK).

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    sigma_spatial : float
        Spatial scale in mm.
    sigma_color : float, optional
        Intensity scale; default: twice the estimated noise standard deviation
        (`noise_std`), so it follows the data's noise.

    Returns
    -------
    Image
        Same shape and geometry, float32.
    """
    import SimpleITK as sitk

    if sigma_spatial <= 0:
        raise ConfigError(f"bilateral sigma_spatial must be positive, got {sigma_spatial}")
    image = as_image(image)

    def f(a):
        sc = sigma_color if sigma_color is not None else 2.0 * max(noise_std(a), 1e-6)
        out = sitk.Bilateral(_sitk(a, image.spacing), domainSigma=float(sigma_spatial), rangeSigma=float(sc))
        return sitk.GetArrayFromImage(out)

    return per_channel(image, f)


def nlmeans(image: Image, *, h: float | None = None, patch_size: int = 5, patch_distance: int = 6) -> Image:
    """Non-local means (scikit-image, fast mode), 2D and 3D.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    h : float, optional
        Filter strength; default 0.8 x the estimated noise standard deviation
        (`noise_std`).
    patch_size, patch_distance : int
        Patch width and search distance in voxels.

    Returns
    -------
    Image
        Same shape and geometry, float32.
    """
    from skimage.restoration import denoise_nl_means

    image = as_image(image)

    def f(a):
        a = float_array(a)
        s = noise_std(a)
        hh = h if h is not None else 0.8 * max(s, 1e-6)
        return denoise_nl_means(a, h=hh, sigma=s, patch_size=patch_size, patch_distance=patch_distance,
                                fast_mode=True).astype(np.float32)

    return per_channel(image, f)


def anisotropic_diffusion(image: Image, *, iterations: int = 5, conductance: float = 1.0,
                          time_step: float | None = None) -> Image:
    """Curvature anisotropic diffusion (SimpleITK): smooths inside regions, keeps edges.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    iterations : int
        Diffusion steps.
    conductance : float
        Edge sensitivity (lower: edges stop the diffusion sooner).
    time_step : float, optional
        Default: the stable step ``min(spacing) / 2**(ndim + 1)``.

    Returns
    -------
    Image
        Same shape and geometry, float32.
    """
    import SimpleITK as sitk

    if iterations < 1 or conductance <= 0:
        raise ConfigError("anisotropic_diffusion needs iterations >= 1 and conductance > 0")
    image = as_image(image)
    # stable step: at most min spacing / 2^(d+1)
    ts = time_step if time_step is not None else min(image.spacing) / 2.0 ** (image.ndim + 1)

    def f(a):
        out = sitk.CurvatureAnisotropicDiffusion(_sitk(a, image.spacing), timeStep=float(ts),
                                                 conductanceParameter=float(conductance),
                                                 numberOfIterations=int(iterations))
        return sitk.GetArrayFromImage(out)

    return per_channel(image, f)


def n4(image: Image, *, mask: np.ndarray | Image | None = None, shrink: int = 2,
       iterations: int = 50, levels: int = 3) -> Image:
    """N4 bias-field correction (SimpleITK) of each channel.

    Parameters
    ----------
    image : Image
        Shape ``([C,] *spatial)``.
    mask : array or Image, optional
        Region that sets the bias estimate; default: Otsu's foreground (SimpleITK).
    shrink : int
        Downsampling factor for speed (the field is smooth).
    iterations, levels : int
        Iterations per level and number of B-spline fitting levels.

    Returns
    -------
    Image
        Same shape and geometry, float32, intensities divided by the estimated field.
    """
    import SimpleITK as sitk

    if shrink < 1 or iterations < 1 or levels < 1:
        raise ConfigError("n4 needs shrink, iterations and levels >= 1")
    image = as_image(image)
    m = None
    if mask is not None:
        m = (np.asarray(mask.array if isinstance(mask, Image) else mask) != 0).astype(np.uint8)

    def f(a):
        a = float_array(a)
        shift = float(a.min())
        img = _sitk(a - shift + 1.0 if shift <= 0 else a, image.spacing)  # N4 needs positive values
        mimg = sitk.OtsuThreshold(img, 0, 1, 200) if m is None else sitk.GetImageFromArray(m)
        mimg.CopyInformation(img)
        small, msmall = img, mimg
        if shrink > 1:
            small = sitk.Shrink(img, [shrink] * img.GetDimension())
            msmall = sitk.Shrink(mimg, [shrink] * img.GetDimension())
        corr = sitk.N4BiasFieldCorrectionImageFilter()
        corr.SetMaximumNumberOfIterations([int(iterations)] * int(levels))
        corr.Execute(small, msmall)
        log_field = corr.GetLogBiasFieldAsImage(img)
        field = np.exp(sitk.GetArrayFromImage(log_field))
        out = sitk.GetArrayFromImage(img) / field
        return (out + shift - 1.0 if shift <= 0 else out).astype(np.float32)

    return per_channel(image, f)
