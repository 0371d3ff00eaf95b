"""What a recipe expects of its input (its ``"expects"`` object), checked before it runs.

A recipe states the imaging modality it is made for (``"CT"``, ``"MR"`` or ``"photo"``, a
fundus camera's), the number of channels it takes, and optionally the units of its
intensities (``"HU"``), the MR weighting (``"T1"``) and the body region (``"head"``).
`check_expectations` compares them with the image:

* the modality comes from the file's metadata (DICOM ``Modality``; a channel name such as
  ``T1`` or ``FLAIR``) or, when the file carries none, from evidence: air near -1000 means a
  CT in Hounsfield units, a 2D PNG/JPEG/TIFF/BMP/GIF or an RGB image is a photograph;
* an evident mismatch is refused in one line ([`InputError`][medseg.errors.InputError]): a CT or a
  photograph given to an MR recipe, an MR to a CT recipe, a wrong number of channels, values
  that are not Hounsfield units for a recipe that needs them;
* what cannot be checked is said, not guessed: an unknown modality, a series description
  that names another MR weighting, a body part other than the recipe's are logged as
  warnings (``medseg: warning: ...`` on the command line) and the recipe runs.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from medseg.errors import ConfigError, InputError, suggest
from medseg.image import Image

__all__ = ["EXPECT_KEYS", "MODALITIES", "check_expectations", "image_modality", "validate_expects"]

log = logging.getLogger(__name__)

EXPECT_KEYS = ("modality", "channels", "units", "weighting", "region")
"""What a recipe may state about its input."""
MODALITIES = {"CT": "a CT", "MR": "an MR image", "photo": "a photograph (fundus camera)"}
"""The modalities a recipe may expect, and how messages name them."""

# DICOM Modality codes (PS3.3 C.7.3.1.1.1) by what they are
_DICOM = {"CT": "CT", "MR": "MR", "PT": "PET", "NM": "nuclear medicine", "US": "ultrasound", "CR": "X-ray",
          "DX": "X-ray", "MG": "mammography", "XA": "X-ray angiography", "RF": "fluoroscopy", "OP": "photo",
          "XC": "photo", "ES": "endoscopy", "SM": "microscopy", "GM": "microscopy"}
# channel names of MR series (MSD dataset.json, BIDS suffixes)
_MR_NAMES = {"MRI", "T1", "T1W", "T1GD", "T1C", "T1CE", "T2", "T2W", "FLAIR", "PD", "PDW", "DWI", "ADC", "SWI"}
_PHOTO_FORMATS = {"PNG", "JPEG", "BMP", "GIF", "TIFF"}
_HU_VALUES = "its values: air near -1000, Hounsfield units"
_HEAD = ("HEAD", "BRAIN", "SKULL", "CRANI", "CEREB")
_T1 = re.compile(r"(?<![A-Z0-9])(T1|MPRAGE|MP_RAGE|SPGR|FSPGR|BRAVO|TFE|FLASH|VIBE)(?![0-9])")
_NOT_T1 = re.compile(r"(?<![A-Z0-9])(T2|FLAIR|ADC|DWI|DTI|SWI|PD|PDW|TRACE|PERFUSION)(?![0-9])")


def validate_expects(data: Any, what: str) -> dict[str, Any]:
    """A recipe's ``"expects"`` object, checked (unknown keys and values are errors).

    Parameters
    ----------
    data : dict
        ``{"modality": "MR", "channels": [1], ...}``.
    what : str
        Where it came from, for messages.

    Returns
    -------
    dict
        The same object, ``channels`` as a list of int.

    Examples
    --------
    >>> validate_expects({"modality": "CT", "units": "HU", "channels": [1]}, "demo")
    {'modality': 'CT', 'units': 'HU', 'channels': [1]}
    >>> validate_expects({"modalty": "CT"}, "demo")
    Traceback (most recent call last):
    ...
    medseg.errors.ConfigError: demo: unknown expectation 'modalty' (did you mean 'modality'?)
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: 'expects' must be an object such as {{\"modality\": \"MR\"}}")
    out = dict(data)
    for k in data:
        if k not in EXPECT_KEYS:
            raise ConfigError(f"{what}: unknown expectation '{k}'{suggest(k, EXPECT_KEYS)}")
    if "modality" in data and data["modality"] not in MODALITIES:
        raise ConfigError(f"{what}: 'expects.modality' must be one of {', '.join(MODALITIES)}, "
                          f"got {data['modality']!r}")
    if data.get("units", "HU") != "HU":
        raise ConfigError(f"{what}: 'expects.units' can only be \"HU\"")
    if data.get("weighting", "T1") != "T1":
        raise ConfigError(f"{what}: 'expects.weighting' can only be \"T1\"")
    if data.get("region", "head") != "head":
        raise ConfigError(f"{what}: 'expects.region' can only be \"head\"")
    if "channels" in data:
        ch = data["channels"]
        if not isinstance(ch, list) or not ch or not all(isinstance(c, int) and c >= 1 for c in ch):
            raise ConfigError(f"{what}: 'expects.channels' must be a list of channel counts such as [1, 3]")
        out["channels"] = [int(c) for c in ch]
    return out


def _declared(meta: Mapping[str, Any]) -> str | None:
    """The modality a file's metadata declares, normalised; None when absent or unclear ("OT")."""
    text = str(meta.get("modality", "") or "").strip().upper()
    if not text:
        return None
    if text in _DICOM:
        return _DICOM[text]
    if text.startswith("MR") or text in _MR_NAMES:
        return "MR"
    if text.startswith("CT"):
        return "CT"
    if text in ("PHOTO", "FUNDUS"):
        return "photo"
    return None


def _air_in_hu(image: Image) -> bool:
    """At least 1 % of the voxels below -500: air in Hounsfield units (no MR or photo has that)."""
    a = np.asarray(image.array)
    return a.dtype.kind in "if" and float(np.mean(a < -500)) >= 0.01


def image_modality(image: Image) -> tuple[str | None, str]:
    """The image's modality and where it was read: the metadata first, evidence otherwise.

    Parameters
    ----------
    image : Image

    Returns
    -------
    modality : str or None
        ``"CT"``, ``"MR"``, ``"photo"``, another modality's name, or None when unknown.
    source : str
        ``"its metadata"``, ``"its values: ..."`` or ``"its format"`` (empty when unknown).

    Examples
    --------
    >>> image_modality(Image(np.zeros((4, 4)), meta={"modality": "MR"}))
    ('MR', 'its metadata')
    >>> image_modality(Image(np.full((4, 4), -1000.0)))
    ('CT', 'its values: air near -1000, Hounsfield units')
    >>> image_modality(Image(np.zeros((4, 4, 4))))
    (None, '')
    """
    declared = _declared(image.meta)
    if declared is not None:
        return declared, "its metadata"
    if _air_in_hu(image):
        return "CT", _HU_VALUES
    fmt = str(image.meta.get("format", "")).upper()
    if image.ndim == 2 and (image.meta.get("rgb") or fmt in _PHOTO_FORMATS):
        return "photo", "its format"
    return None, ""


def _channels(counts: list[int]) -> str:
    words = {1: "single-channel", 3: "RGB"}
    return " or ".join(words.get(c, f"{c}-channel") for c in counts) + " images"


def check_expectations(recipe: Any, image: Image) -> None:
    """Refuse an input a recipe was not made for, in one line; warn about what cannot be checked.

    Parameters
    ----------
    recipe : Recipe
        Its ``name`` and ``expects`` are read (see the module docstring).
    image : Image
        The input, before preprocessing.

    Raises
    ------
    InputError
        An evident mismatch: modality, channels, or values that are not Hounsfield units.

    Examples
    --------
    >>> from medseg.recipes import Recipe
    >>> r = Recipe("demo", "threshold", expects={"modality": "CT", "units": "HU"})
    >>> check_expectations(r, Image(np.array([[-1000.0, 40.0], [700.0, 20.0]])))
    >>> check_expectations(r, Image(np.array([[0.0, 1.0], [2.0, 3.0]])))
    Traceback (most recent call last):
    ...
    medseg.errors.InputError: recipe 'demo' expects a CT in Hounsfield units (air near -1000 HU); ...
    >>> mr = Recipe("demo", "otsu", expects={"modality": "MR"})
    >>> check_expectations(mr, Image(np.full((4, 4, 4), -1000.0)))
    Traceback (most recent call last):
    ...
    medseg.errors.InputError: recipe 'demo' expects an MR image; this image is a CT (from its values: ...
    """
    exp = getattr(recipe, "expects", None) or {}
    name = recipe.name
    if "channels" in exp and image.n_channels not in exp["channels"]:
        raise InputError(f"recipe '{name}' expects {_channels(exp['channels'])}; this image has "
                         f"{image.n_channels} channels")
    want = exp.get("modality")
    got, source = image_modality(image) if want else (None, "")
    if want == "MR" and got in (None, "MR") and _air_in_hu(image):  # a mislabelled CT is still a CT
        got, source = "CT", _HU_VALUES
    if want and got is not None and got != want:
        if source == "its metadata":
            desc = f"this image's modality is {got} (from its metadata)"
        else:
            desc = f"this image is {MODALITIES.get(got, got).replace(' (fundus camera)', '')} (from {source})"
        raise InputError(f"recipe '{name}' expects {MODALITIES[want]}; {desc}")
    if exp.get("units") == "HU":
        a = np.asarray(image.array, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if lo > -500:
            raise InputError(f"recipe '{name}' expects a CT in Hounsfield units (air near -1000 HU); this image "
                             f"spans {lo:.4g} to {hi:.4g}, which is not HU (an MR, or an image normalised already?)")
    if want and got is None:
        log.warning("recipe '%s' expects %s; this image does not say its modality (none in the file), so that "
                    "is not checked", name, MODALITIES[want])
    if exp.get("weighting") == "T1":
        said = [str(image.meta.get(k, "") or "") for k in ("series_description", "modality")]
        text = " ".join(said).upper()
        if _NOT_T1.search(text) and not _T1.search(text):
            log.warning("recipe '%s' is made for T1-weighted MR; this image is described as '%s'", name,
                        next(t for t in said if t))
    if exp.get("region") == "head":
        part = str(image.meta.get("body_part", "") or "").upper()
        if part and not any(h in part for h in _HEAD):
            log.warning("recipe '%s' is made for the head; this image's body part is %s", name, part)
