"""Preprocessing: ``Image -> Image`` functions (2D/3D, channel-aware) and pipelines.

Intensity: `minmax`, `zscore`, `clip_percentile`, `window` (CT
presets), `equalize`, `clahe`, `gamma`. Filters: `gaussian`,
`median`, `bilateral`, `nlmeans`, `anisotropic_diffusion`,
`n4`, and the noise estimate `noise_std`. Grid: `resample`,
`crop_foreground`, `uncrop`, `select_channel`. `Pipeline` chains
named steps (`STEPS`) and saves them as JSON.
"""
from medseg.preprocess.filters import anisotropic_diffusion, bilateral, gaussian, median, n4, nlmeans, noise_std
from medseg.preprocess.geometry import crop_foreground, resample, select_channel, uncrop
from medseg.preprocess.intensity import (
    WINDOW_PRESETS,
    clahe,
    clip_percentile,
    equalize,
    gamma,
    minmax,
    window,
    zscore,
)
from medseg.preprocess.pipeline import STEPS, Pipeline, Step

__all__ = [
    "STEPS", "WINDOW_PRESETS", "Pipeline", "Step", "anisotropic_diffusion", "bilateral", "clahe",
    "clip_percentile", "crop_foreground", "equalize", "gamma", "gaussian", "median", "minmax",
    "n4", "nlmeans", "noise_std", "resample", "select_channel", "uncrop", "window", "zscore",
]
