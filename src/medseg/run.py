"""Apply an ``Image -> Image`` function to files and folders: the engine of ``segment``,
``predict`` and ``preprocess`` (and of the web app).

`pair_paths` names the outputs: one rule for every command, with the output
suffix chosen by what is written — label maps (`output_suffix`) or images
(`image_output_suffix`). `apply_paths` reads each input, applies the function
and writes the result; a bad file in a folder does not stop the others. Outputs keep the
input's geometry, and the input's format where it can hold the result losslessly. Every
output is written atomically; inputs are never modified.
"""
from __future__ import annotations

import csv
import glob
import io
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from medseg.errors import InputError, MedsegError
from medseg.image import Image
from medseg.io import (
    CHANNEL_SUFFIX,
    image_suffix,
    input_kind,
    list_images,
    pair_files,
    read_image,
    read_label,
    strip_suffix,
    write_image,
)
from medseg.io.atomic import atomic_write_text, refuse_existing
from medseg.io.dicom_seg import DICOM_SEG, dicom_seg_pairs, segmenter_class_names, write_dicom_seg
from medseg.io.manifest import MANIFEST_NAME, Manifest, plan_run
from medseg.io.msd_json import read_dataset_json
from medseg.io.multimodal import modality_folders, pair_modalities, read_study, stack_modalities
from medseg.progress import progress as show_progress
from medseg.roi import apply_roi, apply_roi_probabilities

log = logging.getLogger(__name__)

__all__ = ["Output", "output_suffix", "image_output_suffix", "probability_suffix", "pair_paths", "apply_paths",
           "segment_paths", "read_input", "channel_groups", "model_reference", "UNCERTAINTY_CSV", "UNCERTAINTY_COLUMNS",
           "uncertainty_summary", "CaseWork", "CaseTask", "CaseResult", "Engine", "LocalEngine", "process_case"]

UNCERTAINTY_CSV = "uncertainty.csv"
"""The per-case uncertainty summary ``apply_paths(..., uncertainty=True)`` writes beside the label
maps."""
UNCERTAINTY_COLUMNS = ("case", "labels", "foreground_voxels", "entropy_structure", "entropy_all",
                       "mutual_information_structure", "fold_spread_structure", "mirror_spread_structure",
                       "expected_dice")
"""Its columns: the label map's name, the predicted foreground voxels, the mean of each map inside
the predicted structure (foreground; ``_all``: every voxel, or the ROI) and the expected Dice."""

Output = Literal["labels", "images"]
"""What `apply_paths` writes: label maps or (preprocessed) images."""

# label maps: lossy, palette and read-only inputs are written as lossless PNG / NIfTI
_LABEL_SUFFIX = {".jpg": ".png", ".jpeg": ".png", ".dcm": ".nii.gz", "": ".nii.gz", ".gif": ".png", ".bmp": ".png"}
# images: 8-bit raster formats cannot hold float results, so they become float TIFF
_IMAGE_SUFFIX = {".png": ".tif", ".jpg": ".tif", ".jpeg": ".tif", ".bmp": ".tif", ".gif": ".tif", ".dcm": ".nii.gz",
                 "": ".nii.gz"}
_WHAT = {"labels": ("segment", "segmented"), "images": ("process", "processed")}


def output_suffix(input_path: Path) -> str:
    """The suffix a label map for ``input_path`` is written with.

    The input's own suffix, except JPEG/GIF/BMP (lossy or palette: PNG) and DICOM files
    or folders (read-only: NIfTI).

    Parameters
    ----------
    input_path : Path
        An input file or folder.

    Returns
    -------
    str

    Examples
    --------
    >>> output_suffix(Path("fundus.jpg")), output_suffix(Path("scan.nii.gz")), output_suffix(Path("IM0001"))
    ('.png', '.nii.gz', '.nii.gz')
    """
    if input_path.is_dir():
        return ".nii.gz"
    suf = image_suffix(input_path)
    return _LABEL_SUFFIX.get(suf, suf)


def image_output_suffix(input_path: Path) -> str:
    """The suffix a processed image for ``input_path`` is written with.

    The input's own suffix, except the 8-bit raster formats (PNG, JPEG, BMP, GIF), which
    are written as float TIFF, and DICOM files or folders (read-only: NIfTI).

    Parameters
    ----------
    input_path : Path
        An input file or folder.

    Returns
    -------
    str

    Examples
    --------
    >>> image_output_suffix(Path("fundus.png")), image_output_suffix(Path("case.nrrd"))
    ('.tif', '.nrrd')
    """
    if input_path.is_dir():
        return ".nii.gz"
    suf = image_suffix(input_path)
    return _IMAGE_SUFFIX.get(suf, suf)


def probability_suffix(input_path: Path, ndim: int) -> str:
    """The suffix of the probability map written beside a label map for ``input_path``.

    Parameters
    ----------
    input_path : Path
        An input file or folder.
    ndim : int
        Spatial dimensions of the image (unused: every suffix holds both).

    Returns
    -------
    str
        `output_suffix`, except PNG/TIFF, which cannot hold multi-channel float maps:
        NIfTI.

    Examples
    --------
    >>> probability_suffix(Path("fundus.png"), 2)
    '.nii.gz'
    """
    suf = output_suffix(input_path)
    if suf in (".png", ".tif", ".tiff"):  # the TIFF writer cannot hold multi-channel float maps
        return ".nii.gz"
    return suf


def _stem(path: Path) -> str:
    """An output's base name: a folder's whole name, a file's name without its format suffix."""
    return path.name if path.is_dir() else strip_suffix(path)


def pair_paths(inp: str | Path, out: str | Path, *, output: Output = "labels",
               series: str | Sequence[str] | None = None) -> list[tuple[Path, Path]]:
    """Pair each input with the path its result is written to.

    An input folder of images (files and series sub-folders) gives one output per image in
    the output folder, named ``<stem><suffix>``; label maps of an nnU-Net/MSD folder of
    single-channel cases (every name ending in ``_0000``) are named by case id, without it;
    in an MSD folder of multichannel cases (``CASE_0000``, ``CASE_0001``, ...) and in a folder
    of modality sub-folders (``T1/case1.nii.gz``, ``FLAIR/case1.nii.gz``) each case is one
    input (its first channel file stands for it; `read_input` reads them all).
    Any other input (a file, a DICOM series, a scanner export read as one series) gives one output: ``out`` itself, or
    ``out/<stem><suffix>`` when ``out`` is an existing folder or a name without suffix.
    A file's stem is its name without the format suffix; a folder's stem is its whole name.

    Parameters
    ----------
    inp : str or Path
        A file, a DICOM series folder, a scanner export or a folder of images.
    out : str or Path
        The output file or folder.
    output : {"labels", "images"}
        What is written: the suffix rule, `output_suffix` or `image_output_suffix`.
    series : str or sequence of str, optional
        The DICOM series to pick (several: the channels of one multimodal input): the input
        folder is then one study (a scanner export), never a folder of separate inputs.

    Returns
    -------
    list of (Path, Path)
        ``(input, output)`` pairs, in input order.

    Raises
    ------
    InputError
        Missing input, a folder without images, a file as the output of a folder, or an
        output that would overwrite its input.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("a.png", "b.nii.gz"):
    ...     _ = write_image(Image(np.zeros((4, 4), np.uint8)), root / "in" / name)
    >>> [dst.name for _, dst in pair_paths(root / "in", root / "out")]
    ['a.png', 'b.nii.gz']
    >>> [dst.name for _, dst in pair_paths(root / "in", root / "out", output="images")]
    ['a.tif', 'b.nii.gz']
    >>> [dst.name for _, dst in pair_paths(root / "in" / "a.png", root / "masks")]
    ['a.png']
    """
    inp, out = Path(inp), Path(out)
    suffix = output_suffix if output == "labels" else image_output_suffix
    kind = input_kind(inp)
    if kind in ("folder", "dataset") and inp.is_dir() and not series:  # (images.npy is read as one image)
        modalities = modality_folders(inp)
        files = [fs[0] for _, fs in pair_modalities(modalities)] if modalities else _first_channels(list_images(inp))
        if not files:
            raise InputError(f"{inp}: no image files found")
        if (out.exists() and not out.is_dir()) or (not out.exists() and image_suffix(out)):
            raise InputError(f"{out}: the input is a folder of {len(files)} images, so the output must be a "
                             "folder (for one DICOM series of a study, give --series)")
        stems = [_stem(f) for f in files]
        if modalities:
            stems = [cid for cid, _ in pair_modalities(modalities)]
        if output == "labels" and stems and all(CHANNEL_SUFFIX.search(s) and s.endswith("_0000") for s in stems):
            # an nnU-Net/MSD images folder of single-channel cases: outputs are named by case id,
            # as nnU-Net names them (hippocampus_003_0000.nii.gz -> hippocampus_003.nii.gz)
            stems = [CHANNEL_SUFFIX.sub("", s) for s in stems]
        pairs = [(f, out / f"{s}{suffix(f)}") for f, s in zip(files, stems)]
    elif out.is_dir() or (not image_suffix(out) and not out.suffix):
        pairs = [(inp, out / f"{_stem(inp)}{suffix(inp)}")]
    else:
        pairs = [(inp, out)]
    for src, dst in pairs:
        if dst.resolve() == src.resolve():
            raise InputError(f"{dst}: output would overwrite the input; choose another path")
    return pairs


def apply_paths(fn: Callable[[Image], Image], inp: str | Path, out: str | Path, *, output: Output = "labels",
                probabilities: bool = False, series: str | Sequence[str] | None = None, progress: bool = True,
                on_written: Callable[[Path], Any] | None = None, roi: str | Path | None = None,
                overwrite: bool = True, uncertainty: bool = False, reference: str | None = None,
                label_format: str | None = None, engine: Engine | None = None,
                manifest: Mapping[str, Any] | None = None) -> list[Path]:
    """Apply ``fn`` to a file, a DICOM series or a folder of images and write the results.

    Outputs are named by `pair_paths`. In a folder, a file that cannot be read or
    processed does not stop the others: they are written, then one `InputError`
    names each bad file and why. The cases run through ``engine`` (default: one after the
    other in this process, `LocalEngine`); with ``manifest`` a folder run records
    each case's state in ``OUT/manifest.json`` and resumes where a previous run with the
    same options stopped ([`medseg.io.manifest`][]).

    Parameters
    ----------
    fn : callable
        ``Image -> Image`` on the same grid: a segmenter (label map) or a preprocessing
        pipeline (image).
    inp : str or Path
        A file, a DICOM series folder, a scanner export or a folder of images.
    out : str or Path
        The output file or folder.
    output : {"labels", "images"}
        What ``fn`` returns; chooses the output suffixes and the wording of errors.
    probabilities : bool
        Also write ``NAME_prob`` maps (channel-first float32, one channel per class) from
        ``fn.predict_proba``; the label map is then their argmax. Label maps only.
    series : str or sequence of str, optional
        The DICOM series (UID, number or description) to read from a folder holding several;
        several series become the channels of one image, in order, resampled onto the
        reference ([`medseg.io.multimodal.read_study`][]).
    progress : bool
        Show a progress bar for several inputs.
    on_written : callable, optional
        Called with each written path as soon as it is written.
    roi : str or Path, optional
        A region-of-interest mask file (for every input) or a folder of them, paired with the
        inputs as dataset files pair (identical stem, leading case id, number). Outside it the
        label map is 0 and the probability maps give background probability 1. Label maps only.
    overwrite : bool
        Replace outputs that exist already. With ``False`` (the CLI without ``--force``) any
        existing output, probability maps included, stops the command before any input is
        processed ([`refuse_existing`][medseg.io.atomic.refuse_existing]).
    uncertainty : bool
        Also write, beside each label map, ``NAME_uncertainty`` (the predictive entropy over
        log K, 0 certain .. 1 uniform) and, for ensembles, ``NAME_spread`` (two channels: the
        spread of the class probabilities between folds and between mirrorings), with the
        suffix of the probability maps, and one `UNCERTAINTY_CSV` per output folder
        (`uncertainty_summary` of each case). From ``fn.predict_uncertainty`` (the
        ``unet`` ensemble), else the entropy of ``fn.predict_proba`` (no spread). The label
        map is then the one ``predict_uncertainty`` gives (else the probabilities' argmax).
    reference : str, optional
        The modality whose grid a multimodal input's other modalities are resampled onto
        (default: the finest); the outputs lie on its grid.
    label_format : {None, "dicom-seg"}
        ``"dicom-seg"``: write each label map as a DICOM SEG (``NAME.dcm``) referencing its
        DICOM input series, segments named by the model's classes
        ([`medseg.io.dicom_seg.write_dicom_seg`][]); every input must be DICOM.
    engine : Engine, optional
        Runs the cases (`LocalEngine`; ``medseg.run_engines.RayEngine`` shards them
        over Ray actors). Results do not depend on the engine.
    manifest : mapping, optional
        The options that decide the result: a folder input then keeps ``OUT/manifest.json``
        and a rerun with the same options skips the cases done already, even without
        ``overwrite`` ([`medseg.io.manifest.plan_run`][] states the rule).

    Returns
    -------
    list of Path
        The files written by this call, in input order (each probability map before its
        label map); cases skipped on resume are not listed.

    Raises
    ------
    InputError
        See `pair_paths`; a segmenter without ``predict_proba`` asked for
        probabilities or uncertainty; the error of a single input; or, for a folder, one error listing
        the inputs that failed.
    OutputExistsError
        An output exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> from medseg.testing import disc_phantom
    >>> root = Path(tempfile.mkdtemp())
    >>> img, _ = disc_phantom((32, 32))
    >>> src = write_image(img, root / "disc.tif")
    >>> def binarise(image):
    ...     return image.with_array((image.array > 0.5).astype(np.uint8))
    >>> [p.name for p in apply_paths(binarise, src, root / "masks")]
    ['disc.tif']
    """
    if output not in _WHAT:
        raise ValueError(f"output must be 'labels' or 'images', not {output!r}")
    desc, done_verb = _WHAT[output]
    pairs = pair_paths(inp, out, output=output, series=series)
    label_writer = None
    if label_format is not None:
        pairs, label_writer = _label_format(label_format, fn, pairs, out, series, output)
    groups = channel_groups(inp) if not series else {}
    if roi is not None and output != "labels":
        raise InputError("an ROI applies to label maps (segment, predict), not to preprocessed images")
    rois = roi_paths([src for src, _ in pairs], roi)
    proba_fn = getattr(fn, "predict_proba", None)
    if probabilities and (output != "labels" or proba_fn is None):
        raise InputError(f"method '{getattr(fn, 'name', fn)}' does not produce probabilities")
    if uncertainty and (output != "labels" or (proba_fn is None and getattr(fn, "predict_uncertainty", None) is None)):
        raise InputError(f"method '{getattr(fn, 'name', fn)}' gives no probabilities, so no uncertainty; "
                         "--uncertainty needs a model with class probabilities (unet, random forest, ...)")
    targets = [dst for _, dst in pairs]
    extra = (["prob"] if probabilities else []) + (["uncertainty", "spread"] if uncertainty else [])
    for kind in extra:  # NAME_<kind>.<suffix>: the suffix depends on the image read, so any suffix counts
        targets += [p for _, dst in pairs for p in sorted(dst.parent.glob(f"{glob.escape(strip_suffix(dst))}_{kind}.*"))
                    if not p.name.startswith(".")]
    csv_paths = sorted({dst.parent / UNCERTAINTY_CSV for _, dst in pairs}) if uncertainty else []
    work = CaseWork(probabilities=probabilities, uncertainty=uncertainty, reference=reference,
                    series=series if series is None or isinstance(series, str) else tuple(series),
                    label_writer=label_writer)
    man: Manifest | None = None
    done: set[int] = set()
    out_existed = Path(out).exists()
    if manifest is not None and _is_folder_run(inp, series):
        man, done = plan_run(out, pairs, targets + csv_paths, manifest, force=overwrite)
        for i, (src, dst) in enumerate(pairs):
            if i not in done:
                man.set(dst, input=src, state="pending")
        man.write()
        if done:
            log.info("%s: %d of %d cases done already (%s); doing the other %d", out, len(done), len(pairs),
                     MANIFEST_NAME, len(pairs) - len(done))
    else:
        refuse_existing(targets + csv_paths, force=overwrite, where=Path(out) if len(pairs) > 1 else None)
    tasks = [CaseTask(i, src, dst, rois.get(src), tuple(groups[src]) if src in groups else None)
             for i, (src, dst) in enumerate(pairs) if i not in done]
    results: dict[int, CaseResult] = {}
    failed: list[tuple[Path, InputError]] = []
    stream = (engine or LocalEngine()).run(fn, work, tasks)
    try:
        for res in show_progress(stream, total=len(tasks), desc=desc, unit="img", enabled=progress and len(tasks) >= 2):
            src, dst = pairs[res.index]
            if res.error is not None and (len(pairs) == 1 or not isinstance(res.error, InputError)):
                raise res.error
            results[res.index] = res
            if res.error is not None:  # a bad file in a folder: the others are still processed, then one error
                failed.append((src, res.error))
            for path in res.written:
                if on_written is not None:
                    on_written(path)
            if man is not None:
                man.set(dst, input=src, state="failed" if res.error is not None else "done",
                        error=None if res.error is None else str(res.error), outputs=res.written, rows=res.rows)
                man.write()
    except BaseException:
        _drop_empty_manifest(man, out, out_existed)
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # an engine's generator shuts its workers down
    if failed and len(failed) == len(pairs):
        _drop_empty_manifest(man, out, out_existed)
    written = [p for i in sorted(results) for p in results[i].written]
    rows: dict[Path, list[dict[str, Any]]] = {c: [] for c in csv_paths}
    for i, (_, dst) in enumerate(pairs):
        case_rows = results[i].rows if i in results else man.cases[man.key(dst)]["rows"] if man and i in done else []
        rows.setdefault(dst.parent / UNCERTAINTY_CSV, []).extend(case_rows)
    for path, case_rows in rows.items():
        if case_rows:
            written.append(_write_summary(path, case_rows))
            if on_written is not None:
                on_written(path)
    if failed:
        names = "; ".join(f"{src.name}: {str(exc).removeprefix(str(src) + ': ')}" for src, exc in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        ok = len(pairs) - len(failed)
        raise InputError(f"{len(failed)} of {len(pairs)} input(s) could not be {done_verb} — {names}{more}; "
                         + (f"the other {ok} were written to {out}" if ok else "nothing was written"))
    return written


def _drop_empty_manifest(man: Manifest | None, out: str | Path, out_existed: bool) -> None:
    """A folder run that wrote no case leaves nothing behind: not even its manifest, nor the folder it made."""
    if man is None or any(c.get("state") == "done" for c in man.cases.values()):
        return
    man.path.unlink(missing_ok=True)
    d = Path(out)
    if not out_existed and d.is_dir() and not any(d.iterdir()):
        d.rmdir()


@dataclass(frozen=True)
class CaseWork:
    """What `apply_paths` does to every case of a run (picklable: sent once to each worker).

    Parameters
    ----------
    probabilities, uncertainty : bool
        Also write the probability / uncertainty maps.
    series : str or tuple of str, optional
        The DICOM series to read.
    reference : str, optional
        The reference modality of multimodal inputs.
    label_writer : callable, optional
        ``(labels, src, dst) -> path``: writes the label map in another format (DICOM SEG).
    """

    probabilities: bool = False
    uncertainty: bool = False
    series: str | tuple[str, ...] | None = None
    reference: str | None = None
    label_writer: Callable[[Image, Path, Path], Path] | None = None


@dataclass(frozen=True)
class CaseTask:
    """One case of a run: its position, input, label map path, ROI file and channel files."""

    index: int
    src: Path
    dst: Path
    roi: Path | None = None
    channels: tuple[Path, ...] | None = None


@dataclass
class CaseResult:
    """What processing a case gave: the files written, its uncertainty summary rows, or the
    `InputError` that stopped it."""

    index: int
    written: list[Path] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None


class Engine(Protocol):
    """Runs the cases of `apply_paths`: yields one `CaseResult` per task, in any order."""

    def run(self, fn: Callable[[Image], Image], work: CaseWork, tasks: Sequence[CaseTask]) -> Iterator[CaseResult]:
        ...  # pragma: no cover


class LocalEngine:
    """The cases one after the other in this process (the default engine).

    Examples
    --------
    >>> [r.index for r in LocalEngine().run(lambda im: im, CaseWork(), [])]
    []
    """

    name = "local"

    def run(self, fn: Callable[[Image], Image], work: CaseWork, tasks: Sequence[CaseTask]) -> Iterator[CaseResult]:
        """Process ``tasks`` in order with `process_case`.

        Parameters
        ----------
        fn : callable
            The segmenter.
        work : CaseWork
        tasks : sequence of CaseTask

        Yields
        ------
        CaseResult
        """
        for task in tasks:
            yield process_case(fn, work, task)


def process_case(fn: Callable[[Image], Image], work: CaseWork, task: CaseTask) -> CaseResult:
    """Read, segment and write one case (atomically); an `InputError` is returned, not raised.

    Every engine calls this, so a case's outputs do not depend on where it runs.

    Parameters
    ----------
    fn : callable
        The segmenter.
    work : CaseWork
    task : CaseTask

    Returns
    -------
    CaseResult
    """
    proba_fn = getattr(fn, "predict_proba", None)
    unc_fn = None
    if work.uncertainty:
        unc_fn = getattr(fn, "predict_uncertainty", None) or _entropy_of(fn, proba_fn)  # type: ignore[arg-type]
    rows: dict[Path, list[dict[str, Any]]] = {}
    try:
        written = _apply_one(fn, proba_fn if work.probabilities else None, task.src, task.dst, work.series, None,
                             task.roi, unc_fn, rows, work.reference,
                             None if task.channels is None else list(task.channels), work.label_writer)
    except InputError as exc:
        return CaseResult(task.index, error=exc)
    return CaseResult(task.index, written, [r for case_rows in rows.values() for r in case_rows])


def _is_folder_run(inp: str | Path, series: str | Sequence[str] | None) -> bool:
    """Whether `pair_paths` reads ``inp`` as a folder of separate inputs (the case of a manifest)."""
    p = Path(inp)
    return p.is_dir() and not series and input_kind(p) in ("folder", "dataset")

def segment_paths(segmenter: Callable[[Image], Image], inp: str | Path, out: str | Path, *,
                  probabilities: bool = False, progress: bool = True,
                  series: str | Sequence[str] | None = None) -> list[Path]:
    """Segment a file, a DICOM series folder or a folder of images; return the written paths.

    `apply_paths` with ``output="labels"``.

    Parameters
    ----------
    segmenter : callable
        ``Image -> label Image`` (a method, a recipe or a loaded model).
    inp, out : str or Path
        Input and output file or folder.
    probabilities : bool
        Also write ``NAME_prob`` maps (segmenters with ``predict_proba``).
    progress : bool
        Show a progress bar for several inputs.
    series : str or sequence of str, optional
        The DICOM series to read from a folder holding several (several: the channels).

    Returns
    -------
    list of Path
    """
    return apply_paths(segmenter, inp, out, output="labels", probabilities=probabilities, series=series,
                       progress=progress)


def roi_paths(inputs: list[Path], roi: str | Path | None) -> dict[Path, Path]:
    """The ROI file of each input: one file for all, or a folder paired like a dataset's files.

    Parameters
    ----------
    inputs : list of Path
        The input files (or series folders).
    roi : str or Path, optional
        A mask file or a folder of mask files.

    Returns
    -------
    dict
        ``{input: roi_file}`` (empty without ``roi``).

    Raises
    ------
    InputError
        ``roi`` does not exist, or an input has no ROI in the folder.
    """
    if roi is None:
        return {}
    r = Path(roi)
    if not r.exists():
        raise InputError(f"ROI {r} does not exist")
    if r.is_file() or input_kind(r) in ("image", "series"):
        return {src: r for src in inputs}
    files = list_images(r)
    if not files:
        raise InputError(f"ROI folder {r} holds no mask files")
    try:
        paired = pair_files(inputs, {"roi": files}, allow_extra=True)
    except InputError as exc:
        raise InputError(f"cannot pair the inputs with the ROI files in {r}: "
                         f"{str(exc).removeprefix('cannot pair the dataset' + chr(39) + 's files: ')}") from None
    missing = [p.name for _, p, g in paired if "roi" not in g]
    if missing:
        raise InputError(f"no ROI in {r} for {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    return {p: g["roi"] for _, p, g in paired}


def _msd_channel_modality(src: Path) -> str | None:
    """The channel name ``dataset.json`` gives a ``CASE_NNNN`` file of an MSD ``imagesTr``/``imagesTs``
    folder (e.g. ``T1``, ``CT``), or None."""
    folder = src.parent
    m = CHANNEL_SUFFIX.search(strip_suffix(src))
    if m is None or folder.name not in ("imagesTr", "imagesTs") or not (folder.parent / "dataset.json").is_file():
        return None
    try:
        _, channels, _, _ = read_dataset_json(folder.parent / "dataset.json")
    except InputError:
        return None
    k = int(m.group(0).lstrip("_"))
    return channels[k] if k < len(channels) and channels[k] else None


def _entropy_of(fn: Any, proba_fn: Callable[[Image], Image]) -> Callable[[Image], dict[str, Any]]:
    """``predict_uncertainty`` of a segmenter with only ``predict_proba``: the entropy of its probabilities."""
    def predict_uncertainty(image: Image) -> dict[str, Any]:
        prob = proba_fn(image)
        p = np.asarray(prob.array, dtype=np.float32)
        k = max(2, p.shape[0])
        ent = -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=0) / np.float32(math.log(k))
        labels = Image(np.argmax(p, axis=0).astype(np.uint8), prob.spacing, prob.origin, prob.direction, image.meta)
        return {"probabilities": prob, "labels": labels, "maps": {"entropy": ent.astype(np.float32)}}
    return predict_uncertainty


def uncertainty_summary(labels: np.ndarray, prob: np.ndarray, maps: dict[str, np.ndarray],
                        roi: np.ndarray | None = None) -> dict[str, float]:
    """One case's row of `UNCERTAINTY_CSV` (without ``case`` and ``labels``).

    The expected Dice is the soft Dice between the class probabilities and the predicted
    label map, ``2 Σ p_c [ŷ = c] / (Σ p_c + Σ [ŷ = c])``, averaged over the foreground classes
    (the Dice the model expects of itself if its probabilities are calibrated).

    Parameters
    ----------
    labels : ndarray of int, shape (*spatial)
        The predicted label map.
    prob : ndarray, shape (K, *spatial)
        Class probabilities.
    maps : dict
        ``{name: ndarray (*spatial)}``: ``entropy`` and optionally ``mutual_information``,
        ``fold_spread``, ``mirror_spread``.
    roi : ndarray of bool, optional
        Voxels that count.

    Returns
    -------
    dict
        The `UNCERTAINTY_COLUMNS` from ``foreground_voxels`` on (nan where undefined).

    Examples
    --------
    >>> lab = np.array([[0, 1, 1, 0]])
    >>> p1 = np.array([[0.1, 0.9, 0.6, 0.2]])
    >>> row = uncertainty_summary(lab, np.stack([1 - p1, p1]), {"entropy": np.array([[0.5, 0.5, 1.0, 0.7]])})
    >>> row["foreground_voxels"], row["entropy_structure"], round(row["expected_dice"], 4)  # 2*1.5/(1.8+2)
    (2, 0.75, 0.7895)
    """
    inside = np.ones(labels.shape, bool) if roi is None else np.asarray(roi, bool)
    fg = (labels > 0) & inside

    def mean(name: str, where: np.ndarray) -> float:
        m = maps.get(name)
        return float(np.mean(m[where])) if m is not None and where.any() else float("nan")

    dices = []
    for c in range(1, prob.shape[0]):
        pc = np.where(inside, prob[c], 0.0)
        hard = (labels == c) & inside
        den = float(pc.sum()) + float(hard.sum())
        if den > 0:
            dices.append(2.0 * float(pc[hard].sum()) / den)
    return {"foreground_voxels": int(fg.sum()), "entropy_structure": mean("entropy", fg),
            "entropy_all": mean("entropy", inside), "mutual_information_structure": mean("mutual_information", fg),
            "fold_spread_structure": mean("fold_spread", fg), "mirror_spread_structure": mean("mirror_spread", fg),
            "expected_dice": float(np.mean(dices)) if dices else float("nan")}


def _write_summary(path: Path, rows: list[dict[str, Any]]) -> Path:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(UNCERTAINTY_COLUMNS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else
                        (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in r.items()})
    return atomic_write_text(path, buf.getvalue())


def model_reference(segmenter: Any) -> str | None:
    """The reference modality a trained model's plan records (``None``: none, or not a model).

    Parameters
    ----------
    segmenter : object
        A segmenter; models of the ``unet`` method have a ``plan``.

    Returns
    -------
    str or None

    Examples
    --------
    >>> model_reference(object()) is None
    True
    """
    try:
        plan = getattr(segmenter, "plan", None)
    except MedsegError:  # an untrained method
        return None
    ref = getattr(plan, "reference", None)
    return str(ref) if ref else None


def _first_channels(files: list[Path]) -> list[Path]:
    """An MSD folder of multichannel cases: only each case's ``_0000`` file (it stands for the case)."""
    stems = [_stem(f) for f in files]
    if not stems or not all(CHANNEL_SUFFIX.search(s) for s in stems) or all(s.endswith("_0000") for s in stems):
        return files
    return [f for f, s in zip(files, stems) if s.endswith("_0000")]


def _channel_files(src: Path) -> list[Path]:
    """The channel files of the MSD case whose ``_0000`` file is ``src`` (``[src]`` when it has one)."""
    stem = _stem(src) if src.is_file() else ""
    if not stem.endswith("_0000"):
        return [src]
    suffix = src.name[len(stem):]
    files = [src]
    while (nxt := src.with_name(f"{stem[:-4]}{len(files):04d}{suffix}")).is_file():
        files.append(nxt)
    return files


def channel_groups(inp: str | Path) -> dict[Path, list[Path]]:
    """The multimodal cases of an input folder: each case's first file -> all its channel files.

    A folder of modality sub-folders (``T1/case1.nii.gz``, ``FLAIR/case1.nii.gz``) or an MSD
    folder of multichannel cases (``CASE_0000``, ``CASE_0001``, ...); empty for anything else.

    Parameters
    ----------
    inp : str or Path
        An input of `apply_paths`.

    Returns
    -------
    dict of Path to list of Path

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for c in range(2):
    ...     _ = write_image(Image(np.full((4, 4), c, np.float32)), root / f"case1_{c:04d}.nii.gz")
    >>> [[p.name for p in fs] for fs in channel_groups(root).values()]
    [['case1_0000.nii.gz', 'case1_0001.nii.gz']]
    """
    p = Path(inp)
    if not p.is_dir() or input_kind(p) not in ("folder", "dataset"):
        return {}
    modalities = modality_folders(p)
    if modalities:
        return {fs[0]: list(fs) for _, fs in pair_modalities(modalities)}
    files = list_images(p)
    firsts = _first_channels(files)
    if len(firsts) == len(files):
        return {}
    return {f: _channel_files(f) for f in firsts}


def read_input(src: str | Path, *, series: str | Sequence[str] | None = None,
               reference: str | None = None, channels: Sequence[Path] | None = None) -> Image:
    """Read one input as `apply_paths` does, multimodal inputs stacked as channels.

    Parameters
    ----------
    src : str or Path
        An image file, or a DICOM series or study folder.
    series : str or sequence of str, optional
        The series of a DICOM study; several become the channels, in order.
    reference : str, optional
        The modality whose grid the others are resampled onto (default: the finest).
    channels : sequence of Path, optional
        The files of a multimodal case (`channel_groups`), ``src`` first: files of
        modality sub-folders (named after them) or the ``_0000``, ``_0001``, ... files of an
        MSD case (named by ``dataset.json``).

    Returns
    -------
    Image
        ``([C,] *spatial)``; a multimodal input has ``meta["channel_names"]`` when the names
        are known.

    Raises
    ------
    InputError
        A missing modality, a modality that does not overlap the reference, ...

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for c in range(2):
    ...     _ = write_image(Image(np.full((4, 4), c, np.float32)), root / f"case1_{c:04d}.nii.gz")
    >>> read_input(root / "case1_0000.nii.gz").array.shape
    (4, 4)
    >>> read_input(root / "case1_0000.nii.gz", channels=channel_groups(root)[root / "case1_0000.nii.gz"]).array.shape
    (2, 4, 4)
    """
    src = Path(src)
    many = [str(x) for x in series] if series is not None and not isinstance(series, str) else None
    if many is not None and len(many) > 1:
        if not src.is_dir():
            raise InputError(f"{src}: several --series need a DICOM study folder")
        return read_study(src, many, reference=reference)[0]
    one = many[0] if many else series if isinstance(series, str) else None
    if src.is_dir():
        return read_image(src, series=one)
    chans = [Path(c) for c in channels or [src]]
    if len(chans) == 1:
        return read_image(src)
    if len({c.parent for c in chans}) == len(chans):  # modality sub-folders, named after them
        return stack_modalities([read_image(f) for f in chans], [f.parent.name for f in chans],
                                reference=reference, where=f"{_stem(src)}: ")
    names = [_msd_channel_modality(f) or "" for f in chans]
    img = stack_modalities([read_image(f) for f in chans], [n or f"channel_{i}" for i, n in enumerate(names)],
                           reference=reference, where=f"{src.name}: ")
    if not all(names):  # unnamed channels: the model can check their number only
        img = img.with_array(img.array, meta={k: v for k, v in img.meta.items() if k != "channel_names"})
    return img


def _apply_one(fn: Callable[[Image], Image], proba_fn: Callable[[Image], Image] | None, src: Path, dst: Path,
               series: str | Sequence[str] | None, on_written: Callable[[Path], Any] | None,
               roi_path: Path | None = None, unc_fn: Callable[[Image], dict[str, Any]] | None = None,
               rows: dict[Path, list[dict[str, Any]]] | None = None, reference: str | None = None,
               channels: list[Path] | None = None,
               label_writer: Callable[[Image, Path, Path], Path] | None = None) -> list[Path]:
    """Process one input and write its result (and probability and uncertainty maps); return the paths."""
    img = read_input(src, series=series, reference=reference, channels=channels)
    declared = _msd_channel_modality(src) if not img.has_channels else None
    if declared and not img.meta.get("modality"):  # NIfTI stores none; dataset.json names the channel
        img = Image(img.array, img.spacing, img.origin, img.direction, {**img.meta, "modality": declared})
    roi = None
    if roi_path is not None:
        roi = read_label(roi_path)
        if roi.shape != img.shape:
            raise InputError(f"ROI {roi_path.name} has shape {roi.shape} but {src.name} has shape {img.shape}; "
                             "it must be drawn on the same grid")
    psuf = probability_suffix(src, img.ndim)
    if unc_fn is not None:
        res = unc_fn(img)
        prob, labels, maps = res["probabilities"], res["labels"], dict(res["maps"])
        if roi is not None:
            prob, labels = apply_roi_probabilities(prob, roi), apply_roi(labels, roi)
            inside = np.asarray(roi.array) > 0
            maps = {k: np.where(inside, v, np.float32(0)).astype(np.float32) for k, v in maps.items()}
        outputs = []
        if proba_fn is not None:
            outputs.append((prob.with_array(prob.array.astype(np.float32)),
                            dst.with_name(f"{strip_suffix(dst)}_prob{psuf}")))
        outputs.append((prob.with_array(maps["entropy"].astype(np.float32)),
                        dst.with_name(f"{strip_suffix(dst)}_uncertainty{psuf}")))
        if "fold_spread" in maps and "mirror_spread" in maps:
            spread = np.stack([maps["fold_spread"], maps["mirror_spread"]]).astype(np.float32)
            outputs.append((prob.with_array(spread), dst.with_name(f"{strip_suffix(dst)}_spread{psuf}")))
        outputs.append((labels, dst))
        if rows is not None:
            row = {"case": _stem(src), "labels": dst.name,
                   **uncertainty_summary(np.asarray(labels.array), np.asarray(prob.array), maps,
                                         None if roi is None else np.asarray(roi.array) > 0)}
            rows.setdefault(dst.parent / UNCERTAINTY_CSV, []).append(row)
    elif proba_fn is None:
        labels = fn(img)
        outputs = [(labels if roi is None else apply_roi(labels, roi), dst)]
    else:
        prob = proba_fn(img)
        if roi is not None:
            prob = apply_roi_probabilities(prob, roi)
        labels = Image(np.argmax(prob.array, axis=0).astype(np.uint8), prob.spacing, prob.origin,
                       prob.direction, img.meta)
        pdst = dst.with_name(f"{strip_suffix(dst)}_prob{psuf}")
        outputs = [(prob.with_array(prob.array.astype(np.float32)), pdst), (labels, dst)]
    written = []
    for result, path in outputs:
        if label_writer is not None and path == dst:  # the label map, in another format (DICOM SEG)
            written.append(label_writer(result, src, path))
        else:
            written.append(write_image(result, path))
        if on_written is not None:
            on_written(path)
    return written


def _label_format(label_format: str, fn: Any, pairs: list[tuple[Path, Path]], out: str | Path,
                  series: str | Sequence[str] | None, output: Output
                  ) -> tuple[list[tuple[Path, Path]], Callable[[Image, Path, Path], Path]]:
    """``label_format="dicom-seg"``: the checked pairs (outputs ``NAME.dcm``) and the label map writer."""
    if label_format != DICOM_SEG:
        raise InputError(f"unknown label map format '{label_format}'; the one available is '{DICOM_SEG}'")
    if output != "labels":
        raise InputError("--format dicom-seg writes label maps (segment, predict), not preprocessed images")
    pairs = dicom_seg_pairs(pairs, out, series)
    one = series if isinstance(series, str) or series is None else (list(series) or [None])[0]
    names, method = segmenter_class_names(fn), getattr(fn, "name", None)

    def write(labels: Image, src: Path, dst: Path) -> Path:
        return write_dicom_seg(labels, dst, src, series=one, class_names=names,
                               method=str(method) if method else "medseg")
    return pairs, write
