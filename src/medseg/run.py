"""Apply a segmenter to files and folders: the shared engine of ``segment`` and ``predict``.

Outputs keep the input's format and geometry (DICOM series and JPEG inputs are written
as NIfTI and PNG, since label maps cannot be stored in them losslessly). Every output
is written atomically; inputs are never modified.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medseg.errors import InputError
from medseg.image import Image
from medseg.io import image_suffix, list_images, read_image, strip_suffix, write_image

log = logging.getLogger(__name__)

__all__ = ["output_suffix", "segment_paths", "probability_suffix"]

_LOSSY_OR_READONLY = {".jpg": ".png", ".jpeg": ".png", ".dcm": ".nii.gz", "": ".nii.gz", ".gif": ".png", ".bmp": ".png"}


def output_suffix(input_path: Path) -> str:
    """The suffix a label map for ``input_path`` is written with."""
    if input_path.is_dir():
        return ".nii.gz"
    suf = image_suffix(input_path)
    return _LOSSY_OR_READONLY.get(suf, suf)


def probability_suffix(input_path: Path, ndim: int) -> str:
    suf = output_suffix(input_path)
    if suf in (".png", ".tif", ".tiff"):  # the TIFF writer cannot hold multi-channel float maps
        return ".nii.gz"
    return suf


def _pairs(inp: Path, out: Path) -> list[tuple[Path, Path]]:
    if inp.is_dir() and not _is_series(inp) and not _has_series_below(inp):
        files = list_images(inp)
        if not files:
            raise InputError(f"{inp}: no image files found")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: the input is a folder, so the output must be a folder")
        return [(f, out / f"{strip_suffix(f)}{output_suffix(f)}") for f in files]
    if out.is_dir() or (not image_suffix(out) and not out.suffix):
        return [(inp, out / f"{strip_suffix(inp)}{output_suffix(inp)}")]
    return [(inp, out)]


def _has_series_below(folder: Path) -> bool:
    """A folder without plain image files whose sub-folders hold DICOM (a scanner export)."""
    if list_images(folder):
        return False
    from medseg.io.dicom import looks_like_dicom

    return any(looks_like_dicom(f) or f.suffix.lower() == ".dcm" for f in folder.rglob("*") if f.is_file())


def _is_series(folder: Path) -> bool:
    from medseg.io.datasets import _is_dicom_dir

    return _is_dicom_dir(folder)


def segment_paths(segmenter: Callable[[Image], Image], inp: str | Path, out: str | Path, *,
                  probabilities: bool = False, progress: bool = True, series: str | None = None) -> list[Path]:
    """Segment a file, a DICOM series folder or a folder of images; return written paths.

    ``probabilities`` also writes ``NAME_prob`` files (channel-first, one channel per
    class) for segmenters that implement ``predict_proba``. ``series`` picks one DICOM
    series (UID, number or description) when ``inp`` is a folder holding several.
    """
    from tqdm.auto import tqdm

    inp, out = Path(inp), Path(out)
    if not inp.exists():
        raise InputError(f"{inp}: no such file or folder")
    pairs = _pairs(inp, out)
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            raise InputError(f"{dst}: output would overwrite the input; choose another path")
    proba_fn = getattr(segmenter, "predict_proba", None)
    if probabilities and proba_fn is None:
        raise InputError(f"method '{getattr(segmenter, 'name', segmenter)}' does not produce probabilities")
    written: list[Path] = []
    failed: list[tuple[Path, InputError]] = []
    it = tqdm(pairs, desc="segment", unit="img", disable=not progress or len(pairs) < 2)
    for src, dst in it:
        if len(pairs) == 1:
            written += _segment_one(segmenter, proba_fn, src, dst, probabilities, series)
            continue
        try:  # a bad file in a folder: the others are still segmented, then one error names it
            written += _segment_one(segmenter, proba_fn, src, dst, probabilities, series)
        except InputError as exc:
            failed.append((src, exc))
    if failed:
        names = "; ".join(f"{src.name}: {str(exc).removeprefix(str(src) + ': ')}" for src, exc in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        done = len(pairs) - len(failed)
        raise InputError(f"{len(failed)} of {len(pairs)} input(s) could not be segmented — {names}{more}; "
                         + (f"the other {done} were written to {out}" if done else "nothing was written"))
    return written


def _segment_one(segmenter, proba_fn, src: Path, dst: Path, probabilities: bool, series: str | None) -> list[Path]:
    """Segment one input and write its label map (and probability map); return the paths."""
    img = read_image(src, series=series) if src.is_dir() else read_image(src)
    if not probabilities:
        write_image(segmenter(img), dst)
        return [dst]
    prob = proba_fn(img)
    labels = Image(np.argmax(prob.array, axis=0).astype(np.uint8), prob.spacing, prob.origin,
                   prob.direction, img.meta)
    pdst = dst.with_name(f"{strip_suffix(dst)}_prob{probability_suffix(src, img.ndim)}")
    write_image(prob.with_array(prob.array.astype(np.float32)), pdst)
    write_image(labels, dst)
    return [pdst, dst]
