"""The `Plan`: everything training and inference of a deep-learning model agree on.

A plan is written as ``plan.json`` (and inside ``model.json``) when a model is trained and
read back to predict; `plan_from_dict` turns that JSON into a `Plan` again.
How a plan is derived from a dataset is training's business
([`medseg.train.planner.make_plan`][]).

Examples
--------
>>> plan = Plan(dims=3, patch_size=(32, 64, 64))
>>> plan_from_dict(plan.to_json()) == plan
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medseg.config import from_dict, to_dict

__all__ = ["PLAN_VERSION", "Plan", "plan_from_dict"]

PLAN_VERSION = 1
"""The layout of ``plan.json`` this medseg writes."""


@dataclass(frozen=True)
class Plan:
    """Everything training and inference need to agree on (saved as ``plan.json``).

    Parameters
    ----------
    dims : int
        Spatial dimensionality, 2 or 3.
    in_channels, n_classes : int
        Input channels and output classes (background included).
    class_names : dict
        Class value (str) -> name.
    target_spacing : tuple of float
        Spacing every image is resampled to, one value per spatial axis (NumPy order);
        empty: no resampling.
    normalisation : tuple of str
        Per channel: ``"zscore"`` (per image) or ``"ct"`` (clip and z-score with dataset
        statistics).
    channel_names : tuple of str
        The channels' (modalities') names in order (from ``dataset.json`` or the modality
        folders; empty: unknown). Prediction refuses inputs whose named channels differ.
    reference : str
        The modality whose grid the others were resampled onto (``--reference``; empty: the
        finest).
    fusion : str
        ``"early"`` (modalities as input channels of one network) or ``"late"`` (one encoder
        per modality, features fused at every level: [`medseg.nets.fusion`][]).
    ct_stats : tuple
        Per channel: ``(lo, hi, mean, std)`` for ``"ct"`` channels, else ``()``.
    patch_size : tuple of int
        Training patch (and default inference window), one size per spatial axis.
    batch_size : int
        Patches per training step.
    net, channels, num_res_units, norm
        The network (a name of [`medseg.nets.NETS`][]), its widths per level, residual
        units and normalisation.
    class_weights : tuple of float
        Cross-entropy weights per class (empty: none).
    loss, optimizer, lr, weight_decay
        Training loss (``dice_ce``, ``dice`` or ``ce``), optimiser (``adamw`` or ``sgd``),
        initial learning rate and weight decay.
    fg_oversample : float
        Fraction of each batch centred on foreground.
    use_roi : bool
        The training cases have a region of interest (validation scores inside it).
    roi_outside : str
        What the ROI meant ([`medseg.roi`][]): ``"background"`` (labels outside it are all
        0: the outside takes part in the loss and a share of the patches is centred there, so
        predictions are clean without an ROI), ``"unknown"`` (the loss and the sampling stay
        inside it; predictions need an ROI) or ``""`` (no ROI, or a plan written before this
        field existed: treated as ``"unknown"``).
    mirror_axes : tuple of int
        Spatial axes flipped in augmentation and in mirroring test-time augmentation.
    rot90, augment, aug_strength
        90-degree rotations, augmentation on/off and its probability scale (0..1).
    step_seconds : float
        Measured time of one training step when planned (0: not measured).
    version : int
        `PLAN_VERSION`.

    Examples
    --------
    >>> Plan(dims=2, patch_size=(128, 128)).channels
    (16, 32, 64, 128)
    """

    dims: int = 2
    in_channels: int = 1
    n_classes: int = 2
    class_names: dict = field(default_factory=dict)
    target_spacing: tuple = ()
    normalisation: tuple = ()          # per channel: "zscore" | "ct"
    ct_stats: tuple = ()               # per channel: (lo, hi, mean, std) when "ct"
    channel_names: tuple = ()          # per channel: the modality's name ("T1", "FLAIR", "CT")
    reference: str = ""                # modality whose grid the others are resampled onto ("": finest)
    fusion: str = "early"              # "early" (channels) | "late" (one encoder per modality)
    patch_size: tuple = ()
    batch_size: int = 2
    net: str = "unet"
    channels: tuple = (16, 32, 64, 128)
    num_res_units: int = 2
    norm: str = "instance"
    class_weights: tuple = ()
    loss: str = "dice_ce"
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    fg_oversample: float = 0.33
    use_roi: bool = False
    roi_outside: str = ""
    mirror_axes: tuple = ()
    rot90: bool = True
    augment: bool = True               # spatial and intensity augmentation while training
    aug_strength: float = 1.0          # scale of the rotation/scaling/elastic/intensity probabilities
    step_seconds: float = 0.0          # measured time of one training step when planned
    version: int = PLAN_VERSION

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON data (what ``plan.json`` holds).

        Returns
        -------
        dict
            One key per field; tuples become lists.
        """
        return to_dict(self)


def plan_from_dict(data: dict[str, Any]) -> Plan:
    """A `Plan` from JSON data (unknown keys rejected with a suggestion).

    Parameters
    ----------
    data : dict
        What `Plan.to_json` wrote (``plan.json``, or ``model.json``'s ``plan``).

    Returns
    -------
    Plan

    Raises
    ------
    ConfigError
        An unknown key (the message names the nearest field) or a value of the wrong type.

    Examples
    --------
    >>> plan_from_dict({"dims": 3, "patch_size": [16, 32, 32]}).patch_size
    (16, 32, 32)
    """
    d = dict(data)
    d["class_names"] = {str(k): str(v) for k, v in (d.get("class_names") or {}).items()}
    for k in ("target_spacing", "normalisation", "patch_size", "channels", "class_weights", "mirror_axes",
              "channel_names"):
        if k in d and d[k] is not None:
            d[k] = tuple(d[k])
    if "ct_stats" in d:
        d["ct_stats"] = tuple(tuple(float(x) for x in s) if s else () for s in d["ct_stats"])
    return from_dict(Plan, d, what="plan")
