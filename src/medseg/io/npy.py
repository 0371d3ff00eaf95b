"""NumPy ``.npy``/``.npz`` single-image files.

``.npz`` stores the geometry beside the array (keys ``array``, ``spacing``, ``origin``,
``direction``). A ``.npy`` holds only the array; its geometry, when not the default,
travels in a sidecar ``<name>.npy.json``.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from medseg.errors import FormatError
from medseg.image import Image
from medseg.io.base import Format, register_format


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _spatial(ndim: int, spacing) -> tuple | None:
    if spacing is not None:
        return spacing
    if ndim in (2, 3):
        return None
    if ndim == 4:
        return (1.0, 1.0, 1.0)  # (C, z, y, x)
    raise FormatError(f"array with {ndim} dimensions: expected 2D, 3D or channel-first 3D")


def read_npy(path: Path) -> Image:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise FormatError(f"{path}: not a plain numeric .npy array ({exc})") from None
    geom = {}
    side = _sidecar(path)
    if side.is_file():
        try:
            geom = json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise FormatError(f"{side}: invalid geometry JSON ({exc.msg})") from None
    spacing = _spatial(arr.ndim, geom.get("spacing"))
    return Image(arr, spacing, geom.get("origin"), geom.get("direction"))


def _default_geometry(image: Image) -> bool:
    return (all(s == 1.0 for s in image.spacing) and not any(image.origin)
            and bool(np.allclose(image.direction, np.eye(image.ndim))) and not image.has_channels)


def write_npy(image: Image, path: Path) -> None:
    """Write the array, and its geometry to ``<path>.json`` unless it is the default.

    Called with the final file name inside a temporary folder (a multi-file format), so
    the array and its sidecar are moved into place together, sidecar first.
    """
    with open(path, "wb") as fh:
        np.save(fh, image.array, allow_pickle=False)
    if not _default_geometry(image):
        geom = {"spacing": list(image.spacing), "origin": list(image.origin),
                "direction": np.asarray(image.direction).tolist()}
        _sidecar(path).write_text(json.dumps(geom, indent=1) + "\n")


def read_npz(path: Path) -> Image:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = "array" if "array" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise FormatError(f"{path}: .npz holds {keys}; expected one array or an 'array' key")
            arr = z[key]
            spacing = tuple(z["spacing"].tolist()) if "spacing" in keys else _spatial(arr.ndim, None)
            origin = tuple(z["origin"].tolist()) if "origin" in keys else None
            direction = z["direction"] if "direction" in keys else None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        raise FormatError(f"{path}: .npz contains non-numeric data ({exc})") from None
    return Image(arr, spacing, origin, direction)


def write_npz(image: Image, path: Path) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, array=image.array, spacing=np.asarray(image.spacing),
                            origin=np.asarray(image.origin), direction=np.asarray(image.direction))


def _drop_stale_sidecar(image: Image, path: Path) -> None:
    """After the rename: a sidecar left from an earlier write must not outlive its array."""
    side = _sidecar(path)
    if _default_geometry(image) and side.exists():
        side.unlink()


register_format(Format("NumPy", (".npy",), read_npy, write_npy, "NumPy array (geometry in a .npy.json sidecar)",
                       _drop_stale_sidecar, multi_file=True))
register_format(Format("NumPy-zip", (".npz",), read_npz, write_npz, "NumPy archive with geometry"))
