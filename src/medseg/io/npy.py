"""NumPy ``.npy``/``.npz`` single-image files.

``.npz`` stores the geometry beside the array (keys ``array``, ``spacing``, ``origin``,
``direction``). A ``.npy`` holds only the array; its geometry, when not the default,
travels in a sidecar ``<name>.npy.json``.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import FormatError
from medseg.image import SPACING_UNKNOWN, Image
from medseg.io.base import Format, register_format

__all__ = ["read_npy", "write_npy", "read_npz", "write_npz"]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _geometry(ndim: int, spacing: Any, origin: Any, direction: Any) -> tuple[Any, Any, Any]:
    """Spacing, origin and direction for an array of ``ndim`` dimensions; defaults where absent.

    Without a spacing, 2D and 3D arrays have no channel axis and 4D arrays are
    channel-first 3D ``(C, z, y, x)``.
    """
    if spacing is None:
        if ndim not in (2, 3, 4):
            raise FormatError(f"array with {ndim} dimensions: expected 2D, 3D or channel-first 3D")
        spacing = (1.0,) * min(ndim, 3)
    n = len(spacing)
    return (tuple(spacing), tuple(origin) if origin is not None else (0.0,) * n,
            np.asarray(direction, dtype=np.float64) if direction is not None else np.eye(n))


def read_npy(path: Path) -> Image:
    """Read a ``.npy`` array, with its geometry from the ``<name>.npy.json`` sidecar when present.

    Parameters
    ----------
    path : Path

    Returns
    -------
    Image
        Array ``(y, x)``, ``(z, y, x)`` or ``(C, z, y, x)``; unit spacing without a sidecar.

    Raises
    ------
    FormatError
        Not a plain numeric array (pickled objects are refused), or invalid sidecar JSON.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(p, np.zeros((4, 5), np.float32))
    >>> read_npy(p).spacing
    (1.0, 1.0)
    """
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
    spacing, origin, direction = _geometry(arr.ndim, geom.get("spacing"), geom.get("origin"), geom.get("direction"))
    return Image(arr, spacing, origin, direction, meta={} if geom.get("spacing") else {SPACING_UNKNOWN: True})


def _default_geometry(image: Image) -> bool:
    return (all(s == 1.0 for s in image.spacing) and not any(image.origin)
            and bool(np.allclose(image.direction, np.eye(image.ndim))) and not image.has_channels)


def write_npy(image: Image, path: Path) -> None:
    """Write the array, and its geometry to ``<path>.json`` unless it is the default.

    Called with the final file name inside a temporary folder (a multi-file format), so
    the array and its sidecar are moved into place together, sidecar first.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``.
    path : Path
        The ``.npy`` file to write.
    """
    with open(path, "wb") as fh:
        np.save(fh, image.array, allow_pickle=False)
    if not _default_geometry(image):
        geom = {"spacing": list(image.spacing), "origin": list(image.origin),
                "direction": np.asarray(image.direction).tolist()}
        _sidecar(path).write_text(json.dumps(geom, indent=1) + "\n")


def read_npz(path: Path) -> Image:
    """Read a ``.npz`` archive: key ``array`` (or its only array) plus optional geometry keys.

    Parameters
    ----------
    path : Path

    Returns
    -------
    Image
        Array ``([C,] *spatial)`` with the stored ``spacing``, ``origin``, ``direction``.

    Raises
    ------
    FormatError
        Not a readable archive, non-numeric data, or several arrays without ``array``.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.npz"
    >>> write_npz(Image(np.zeros((3, 4, 5), np.uint8), (2.0, 1.0, 1.0)), p)
    >>> read_npz(p).spacing
    (2.0, 1.0, 1.0)
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            key = "array" if "array" in keys else (keys[0] if len(keys) == 1 else None)
            if key is None:
                raise FormatError(f"{path}: .npz holds {keys}; expected one array or an 'array' key")
            arr = z[key]
            spacing, origin, direction = _geometry(arr.ndim, *(z[k].tolist() if k in keys else None
                                                               for k in ("spacing", "origin", "direction")))
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FormatError(f"{path}: not a readable .npz archive ({exc})") from None
    except ValueError as exc:
        raise FormatError(f"{path}: .npz contains non-numeric data ({exc})") from None
    return Image(arr, spacing, origin, direction)


def write_npz(image: Image, path: Path) -> None:
    """Write the array and its geometry as a compressed ``.npz`` archive.

    Parameters
    ----------
    image : Image
        Array ``([C,] *spatial)``.
    path : Path
        The ``.npz`` file to write.
    """
    with open(path, "wb") as fh:
        np.savez_compressed(fh, array=image.array, spacing=np.asarray(image.spacing),
                            origin=np.asarray(image.origin), direction=np.asarray(image.direction))


def _drop_stale_sidecar(image: Image, path: Path) -> None:
    """After the rename: a sidecar left from an earlier write must not outlive its array."""
    side = _sidecar(path)
    if _default_geometry(image) and side.exists():
        side.unlink()


register_format(Format("NumPy", (".npy",), read_npy, write_npy, "NumPy array (geometry in a .npy.json sidecar)",
                       sidecar=_drop_stale_sidecar, multi_file=True))
register_format(Format("NumPy-zip", (".npz",), read_npz, write_npz, "NumPy archive with geometry"))
