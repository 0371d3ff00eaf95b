"""Dataset layouts: folders, explicit image/label/roi folders, npy pairs, nnU-Net/MSD.

A `Dataset` is a list of `Case` records plus loaders; images are read
lazily, so large datasets are never held in memory at once.

Layouts
-------
``folders``
    ``ROOT/images/`` with ``ROOT/labels/`` (or ``masks/``) and optionally ``ROOT/roi/``
    (or ``fov/``); or the same three folders given explicitly. ``images/`` may hold one
    sub-folder per modality instead (``images/T1/case1.nii.gz``, ``images/FLAIR/case1.nii.gz``):
    each case then has one channel per sub-folder, named after it.
``npy``
    ``images.npy`` shaped ``(N,H,W)``, ``(N,H,W,C)``, ``(N,D,H,W)`` or ``(N,D,H,W,C)``
    and ``labels.npy`` shaped ``(N,H,W)`` (integers) or ``(N,H,W,K)`` (one-hot).
``msd``
    the nnU-Net v2 / Medical Segmentation Decathlon raw layout: ``imagesTr/``,
    ``labelsTr/``, ``imagesTs/``, ``dataset.json``, channels as ``CASE_0000``, ``CASE_0001``.

Channels on different grids are resampled in physical space onto a reference channel
(``load_dataset(reference=NAME)``; default: the finest), see [`medseg.io.multimodal`][].

Pairing in the folder layouts: identical stems first; otherwise a shared leading case
id (``21_training.tif`` <-> ``21_manual1.gif`` <-> ``21_training_mask.gif``); otherwise
a shared number. Unpaired or ambiguous files raise one error listing them.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import ConfigError, FormatError, GeometryError, InputError
from medseg.image import Image, same_grid
from medseg.io.base import read_image, strip_suffix
from medseg.io.labels import as_label, read_label
from medseg.io.listing import case_key, list_images, pair_files, short_list
from medseg.io.msd_json import read_dataset_json
from medseg.io.multimodal import label_onto, modality_folders, norm_name, pair_modalities, stack_modalities

__all__ = ["Case", "Dataset", "load_dataset", "check_pair", "list_images", "pair_files", "case_key", "labelled_rows",
           "labelled_rows_file"]

LABEL_DIRS = ("labels", "masks", "label", "mask_labels", "gt", "ground_truth", "segmentations")
ROI_DIRS = ("roi", "rois", "fov")
IMAGE_DIRS = ("images", "image", "imgs")


@dataclass(frozen=True)
class Case:
    """One case: its channel files (or npy index), label and ROI sources.

    Parameters
    ----------
    case_id : str
        The case's name (file stem, shared id or stack index).
    images : tuple of Path
        One file per channel (the stack file for npy datasets).
    label, roi : Path, optional
        The label-map and region-of-interest files.
    index : int, optional
        Position in an npy stack.
    """

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None
    roi: Path | None = None
    index: int | None = None  # position in an npy stack


@dataclass
class Dataset:
    """A segmentation dataset: cases plus lazy loaders.

    Parameters
    ----------
    root : Path
        The dataset's folder.
    layout : str
        ``folders``, ``npy`` or ``msd``.
    cases : list of Case
        The labelled (training) cases.
    label_names : dict of int to str
        Names of the label values (from ``dataset.json``).
    channel_names : list of str
        Names of the channels (from ``dataset.json``).
    test_cases : list of Case
        Unlabelled cases (``imagesTs/``).
    meta : dict
        Layout details (folders, files, ``dataset.json``).

    Examples
    --------
    >>> import tempfile
    >>> from medseg.testing import make_dataset
    >>> ds = load_dataset(make_dataset(Path(tempfile.mkdtemp()) / "d", kind="disc", n=2, shape=(16, 16)))
    >>> img, lab = ds.load_image(ds.cases[0]), ds.load_label(ds.cases[0])
    >>> ds.layout, len(ds), img.shape == lab.shape
    ('folders', 2, True)
    """

    root: Path
    layout: str
    cases: list[Case]
    label_names: dict[int, str] = field(default_factory=dict)
    channel_names: list[str] = field(default_factory=list)
    test_cases: list[Case] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        """Number of (training) cases."""
        return len(self.cases)

    def __repr__(self) -> str:
        labelled = sum(c.label is not None for c in self.cases)
        roi = sum(c.roi is not None for c in self.cases)
        test = f", {len(self.test_cases)} test" if self.test_cases else ""
        return (f"Dataset({str(self.root)!r}, layout={self.layout!r}, {len(self.cases)} cases{test}, "
                f"{labelled} labelled, {roi} with ROI)")

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    @property
    def case_ids(self) -> list[str]:
        """The ids of `cases`, in order."""
        return [c.case_id for c in self.cases]

    @property
    def has_labels(self) -> bool:
        """True when any case has a label map."""
        return any(c.label is not None or (c.index is not None and "labels" in self._arrays) for c in self.cases)

    @property
    def has_roi(self) -> bool:
        """True when any case has a region-of-interest mask."""
        return any(c.roi is not None for c in self.cases)

    def case(self, case_id: str) -> Case:
        """The case (training or test) named ``case_id``.

        Parameters
        ----------
        case_id : str

        Returns
        -------
        Case

        Raises
        ------
        InputError
            No such case.
        """
        for c in self.cases + self.test_cases:
            if c.case_id == case_id:
                return c
        raise InputError(f"no case '{case_id}' in {self.root}")

    # ------------------------------------------------------------------ loading
    def load_image(self, case: Case) -> Image:
        """The case's image; several channel files are stacked on a channel axis.

        Parameters
        ----------
        case : Case

        Returns
        -------
        Image
            ``([C,] *spatial)``; several channels on different grids are resampled onto the
            reference channel (``meta["reference"]``, default the finest) in physical space.
            ``meta["channel_names"]`` names the channels when the dataset does.

        Raises
        ------
        InputError
            A multi-channel channel file, or a channel that does not overlap the reference.
        """
        if case.index is not None:
            return self._npy_image(case.index)
        imgs = [read_image(p) for p in case.images]
        if len(imgs) == 1:
            return imgs[0]
        for p, im in zip(case.images, imgs):
            if im.has_channels:
                raise InputError(f"{p}: channel files must be single-channel images")
        names = (list(self.channel_names) if len(self.channel_names) == len(imgs)
                 else [f"channel_{i}" for i in range(len(imgs))])
        stacked = stack_modalities(imgs, names, reference=self.meta.get("reference") or None,
                                   where=f"case {case.case_id}: ")
        meta = {**dict(stacked.meta), "channel_files": [str(p) for p in case.images]}
        if not self.channel_names:
            meta.pop("channel_names", None)
        return stacked.with_array(stacked.array, meta=meta)

    def load_label(self, case: Case, image: Image | None = None) -> Image | None:
        """The case's label map (None when it has none); checked against ``image`` if given.

        Parameters
        ----------
        case : Case
        image : Image, optional
            The case's image: the label map must share its shape and geometry.

        Returns
        -------
        Image or None
            Integer map of shape ``spatial``.
        """
        if case.label is None:
            return None
        if case.index is not None:
            lab = self._npy_label(case.index)
        else:
            lab = read_label(case.label)
        if image is not None:
            if len(case.images) > 1 and case.index is None:  # a multimodal case: the map may lie on any modality
                lab = label_onto(lab, image, where=f"{case.label}")
            check_pair(image, lab, case.label or self.root, what="label map")
        return lab

    def load_roi(self, case: Case, image: Image | None = None) -> Image | None:
        """The case's region of interest as a 0/1 uint8 map (None when absent).

        Parameters
        ----------
        case : Case
        image : Image, optional
            The case's image: the mask must share its shape and geometry.

        Returns
        -------
        Image or None
            ``uint8`` map of shape ``spatial``.
        """
        if case.roi is None:
            return None
        roi = read_label(case.roi)
        roi = roi.with_array((roi.array > 0).astype(np.uint8))
        if image is not None:
            if len(case.images) > 1 and case.index is None:  # a multimodal case: the mask may lie on any modality
                roi = label_onto(roi, image, where=f"{case.roi}")
            check_pair(image, roi, case.roi, what="ROI mask")
        return roi

    # ------------------------------------------------------------------ npy stacks
    def _npy_image(self, i: int) -> Image:
        arr = self._arrays["images"][i]
        axes = self.meta["npy_spatial"]
        meta = {"source": str(self.root), "index": i}
        if arr.ndim > axes:  # channels last -> first
            arr = np.moveaxis(arr, -1, 0)
            # (N, H, W, 3|4) uint8 stacks are colour photographs (the tutorial layout)
            meta["rgb"] = axes == 2 and arr.shape[0] in (3, 4) and arr.dtype == np.uint8
        return Image(np.ascontiguousarray(arr), (1.0,) * axes, meta=meta)

    def _npy_label(self, i: int) -> Image:
        if "labels" not in self._arrays:
            raise InputError(f"{self.root}: this npy dataset has no labels")
        lab = self._arrays["labels"][i]
        axes = self.meta["npy_spatial"]
        if lab.ndim > axes:
            if lab.shape[-1] == 1:
                lab = lab[..., 0]
            else:  # one-hot (..., K)
                lab = np.argmax(lab, axis=-1)
        return as_label(Image(np.ascontiguousarray(lab), (1.0,) * axes), name=f"{self.root} labels[{i}]")


def check_pair(image: Image, other: Image, path: str | Path, *, what: str) -> None:
    """Refuse a label/ROI map whose shape or geometry differs from its image's.

    Parameters
    ----------
    image : Image
        The reference image.
    other : Image
        The map that must lie on the same grid (spacing, origin, direction within 1e-3).
    path : str or Path
        Where ``other`` came from, for the message.
    what : str
        What ``other`` is (``"label map"``, ``"ROI mask"``).

    Raises
    ------
    GeometryError
    """
    if other.shape != image.shape:
        raise GeometryError(f"{path}: {what} shape {other.shape} does not match the image shape {image.shape}")
    if not same_grid(image, other, atol=1e-3):
        raise GeometryError(
            f"{path}: {what} geometry does not match the image (spacing {other.spacing} vs {image.spacing}, "
            f"origin {other.origin} vs {image.origin}); resample it onto the image grid first"
        )


# ---------------------------------------------------------------------- layouts
def _find_dir(root: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        p = root / n
        if p.is_dir():
            return p
        if p.exists():  # a layout part that is not what the layout needs: never skipped silently
            raise InputError(f"{p} is a file, not a folder; the dataset layout needs {n}/ to be a folder of images")
    return None


def load_dataset(path: str | Path | None = None, *, images: str | Path | None = None,
                 labels: str | Path | None = None, roi: str | Path | None = None,
                 require_labels: bool = False, partial: bool = False, reference: str | None = None) -> Dataset:
    """Open a dataset in any supported layout.

    Parameters
    ----------
    path : str or Path, optional
        A folder (``images/`` + ``labels/``, MSD layout, or one holding ``images.npy``)
        or an ``images.npy`` file. Omit it when giving ``images=`` explicitly.
    images, labels, roi : str or Path, optional
        Explicit folders (layout ``folders``).
    require_labels : bool
        Raise when the dataset has no labels.
    partial : bool
        Accept images without a label (a dataset being annotated, as ``medseg serve`` opens
        it): their cases have ``label=None``. Labels without an image are still refused.
        Training refuses such cases by name.
    reference : str, optional
        The channel (modality) whose grid the others are resampled onto when a case's
        channels lie on different grids (``--reference``); default: the finest.

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        Not a dataset, unpairable files, or no labels when required.
    """
    if images is not None:
        ds = _folders(Path(images), Path(labels) if labels else None, Path(roi) if roi else None,
                      root=Path(path) if path else Path(images).parent, partial=partial)
    elif path is None:
        raise InputError("give a dataset folder, or --images DIR (with --labels DIR and optionally --roi DIR)")
    else:
        root = Path(path)
        if not root.exists():
            raise InputError(f"{root}: no such dataset folder or file")
        if root.is_file() and root.suffix == ".npy":
            ds = _npy(root, None)
        elif root.is_file() and root.suffix == ".npz":
            ds = _npy(root, None)
        elif not root.is_dir():
            raise InputError(f"{root}: a dataset must be a folder (or an images.npy file)")
        elif (root / "imagesTr").is_dir() or (root / "dataset.json").is_file():
            ds = _msd(root, partial=partial)
        elif (root / "images.npy").is_file() or (root / "images.npz").is_file():
            ds = _npy(root / ("images.npy" if (root / "images.npy").is_file() else "images.npz"), None)
        else:
            img_dir = _find_dir(root, IMAGE_DIRS)
            if img_dir is None:
                raise InputError(
                    f"{root}: not a dataset: expected images/ (+ labels/, roi/), imagesTr/ + dataset.json, "
                    f"or images.npy + labels.npy; or pass --images/--labels explicitly"
                )
            ds = _folders(img_dir, _find_dir(root, LABEL_DIRS), _find_dir(root, ROI_DIRS), root=root, partial=partial)
    if reference:
        if ds.channel_names and not any(norm_name(reference) == norm_name(n) for n in ds.channel_names):
            raise ConfigError(f"--reference {reference}: no such modality; the dataset has "
                              f"{', '.join(ds.channel_names)}")
        ds.meta["reference"] = str(reference)
    if not ds.cases:
        raise InputError(f"{ds.root}: the dataset has no cases (no image files where the {ds.layout} layout "
                         "expects them)")
    if require_labels and not ds.has_labels:
        raise InputError(f"{ds.root}: the dataset has no labels (expected a labels folder or labels.npy)")
    return ds


def _folders(img_dir: Path, lab_dir: Path | None, roi_dir: Path | None, *, root: Path,
             partial: bool = False) -> Dataset:
    modalities = modality_folders(img_dir)
    if modalities:
        return _modality_folders(img_dir, modalities, lab_dir, roi_dir, root=root, partial=partial)
    imgs = list_images(img_dir)
    if not imgs:
        raise InputError(f"{img_dir}: no image files found")
    others = {}
    if lab_dir is not None:
        others["labels"] = list_images(lab_dir)
    if roi_dir is not None:
        others["roi"] = list_images(roi_dir)
    pairs = pair_files(imgs, others, optional=("labels",) if partial else ())
    cases = [Case(cid, (img,), g.get("labels"), g.get("roi")) for cid, img, g in pairs]
    return Dataset(root, "folders", cases, meta={"images_dir": str(img_dir),
                                                  "labels_dir": str(lab_dir) if lab_dir else None,
                                                  "roi_dir": str(roi_dir) if roi_dir else None})


def _modality_folders(img_dir: Path, modalities: list[Path], lab_dir: Path | None, roi_dir: Path | None, *,
                      root: Path, partial: bool) -> Dataset:
    """``images/<MODALITY>/<case>`` + ``labels/<case>``: one channel per modality sub-folder."""
    grouped = pair_modalities(modalities)
    others = {}
    if lab_dir is not None:
        others["labels"] = list_images(lab_dir)
    if roi_dir is not None:
        others["roi"] = list_images(roi_dir)
    firsts = [files[0] for _, files in grouped]
    by_first = {files[0]: (cid, files) for cid, files in grouped}
    pairs = pair_files(firsts, others, optional=("labels",) if partial else ()) if others else [
        (cid, files[0], {}) for cid, files in grouped]
    cases = [Case(by_first[img][0], by_first[img][1], g.get("labels"), g.get("roi")) for _, img, g in pairs]
    return Dataset(root, "folders", cases, channel_names=[m.name for m in modalities],
                   meta={"images_dir": str(img_dir), "modality_dirs": [str(m) for m in modalities],
                         "labels_dir": str(lab_dir) if lab_dir else None,
                         "roi_dir": str(roi_dir) if roi_dir else None})


def _load_array(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                return z[keys[0]]
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: cannot read the array ({exc})") from None


def labelled_rows_file(labels_path: str | Path) -> Path:
    """The sidecar listing which rows of a labels stack hold labels (``labels.npy`` ->
    ``labels.labelled.json``): written by ``medseg serve`` when it starts a stack for a dataset
    being annotated, so that the rows nobody labelled yet are not read as empty label maps.

    Parameters
    ----------
    labels_path : str or Path
        The ``labels.npy`` (or ``.npz``) file.

    Returns
    -------
    Path
    """
    p = Path(labels_path)
    return p.with_name(p.name.split(".")[0] + ".labelled.json")


def labelled_rows(labels_path: str | Path) -> set[int] | None:
    """The rows of a labels stack that hold labels, from its sidecar; None (every row) without one.

    Parameters
    ----------
    labels_path : str or Path
        The ``labels.npy`` (or ``.npz``) file.

    Returns
    -------
    set of int or None

    Raises
    ------
    InputError
        A sidecar that is not a JSON list of row numbers.
    """
    side = labelled_rows_file(labels_path)
    if not side.is_file():
        return None
    try:
        rows = json.loads(side.read_text())
        if not isinstance(rows, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in rows):
            raise ValueError("expected a list of row numbers")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{side}: not a list of labelled rows ({exc})") from None
    return set(rows)


def _npy(images_path: Path, labels_path: Path | None) -> Dataset:
    root = images_path.parent
    if labels_path is None:
        for cand in ("labels", "masks", "labels_train", "masks_train"):
            for suf in (".npy", ".npz"):
                if (root / f"{cand}{suf}").is_file():
                    labels_path = root / f"{cand}{suf}"
                    break
            if labels_path:
                break
    imgs = _load_array(images_path)
    labs = _load_array(labels_path) if labels_path else None
    if imgs.dtype.kind not in "biuf":
        raise InputError(f"{images_path}: unsupported dtype {imgs.dtype}")
    if imgs.ndim < 3 or imgs.ndim > 5:
        raise InputError(f"{images_path}: shape {imgs.shape}; expected (N,H,W), (N,H,W,C), (N,D,H,W) or (N,D,H,W,C)")
    if imgs.shape[0] == 0:
        raise InputError(f"{images_path}: holds zero images")
    if imgs.ndim == 3:
        spatial = 2
    elif imgs.ndim == 5:
        spatial = 3
    elif labs is not None and labs.ndim == 4 and labs.shape == imgs.shape and imgs.shape[-1] > 4:
        spatial = 3
    else:
        spatial = 2 if imgs.shape[-1] <= 4 else 3
    if labs is not None:
        if labs.shape[0] != imgs.shape[0]:
            raise InputError(f"{labels_path}: {labs.shape[0]} label maps for {imgs.shape[0]} images")
        sp_img = imgs.shape[1:1 + spatial]
        if tuple(labs.shape[1:1 + spatial]) != tuple(sp_img) or labs.ndim > spatial + 2:
            raise InputError(f"{labels_path}: label shape {labs.shape} does not match image shape {imgs.shape}")
    n = imgs.shape[0]
    width = len(str(n - 1))
    rows = labelled_rows(labels_path) if labels_path is not None else None
    cases = [Case(f"{i:0{width}d}", (images_path,), labels_path if rows is None or i in rows else None, None, index=i)
             for i in range(n)]
    arrays = {"images": imgs}
    if labs is not None:
        arrays["labels"] = labs
    return Dataset(root, "npy", cases, meta={"npy_spatial": spatial, "images_file": str(images_path),
                                              "labels_file": str(labels_path) if labels_path else None},
                   _arrays=arrays)


_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})$")


def _msd(root: Path, *, partial: bool = False) -> Dataset:
    info: dict[str, Any] = {}
    channel_names: list[str] = []
    label_names: dict[int, str] = {}
    ending = None
    dj = root / "dataset.json"
    if dj.is_file():
        info, channel_names, label_names, ending = read_dataset_json(dj)
    img_dir = root / "imagesTr"
    if not img_dir.is_dir():
        raise InputError(f"{root}: dataset.json found but no imagesTr/ folder")
    for part in ("labelsTr", "imagesTs"):
        if (root / part).exists() and not (root / part).is_dir():
            raise InputError(f"{root / part} is a file, not a folder; the MSD/nnU-Net layout needs {part}/ "
                             "to be a folder")

    def group(folder: Path) -> list[Case]:
        files = [p for p in list_images(folder) if ending is None or p.name.endswith(ending)]
        by_case: dict[str, dict[int, Path]] = {}
        for p in files:
            m = _CHANNEL_RE.match(strip_suffix(p))
            if not m:
                raise InputError(f"{p}: MSD/nnU-Net image names must end in _0000, _0001 … (channel index)")
            by_case.setdefault(m["case"], {})[int(m["ch"])] = p
        cases = []
        n_ch = len(channel_names) or None
        for cid in sorted(by_case):
            chans = by_case[cid]
            want = list(range(n_ch or (max(chans) + 1)))
            missing = [c for c in want if c not in chans]
            if missing:
                raise InputError(f"{folder}: case {cid} lacks channel file(s) "
                                 f"{', '.join(f'_{c:04d}' for c in missing)}")
            cases.append(Case(cid, tuple(chans[c] for c in want)))
        return cases

    cases = group(img_dir)
    lab_dir = root / "labelsTr"
    if lab_dir.is_dir():
        labs = {strip_suffix(p): p for p in list_images(lab_dir)}
        missing = [] if partial else [c.case_id for c in cases if c.case_id not in labs]
        extra = sorted(set(labs) - {c.case_id for c in cases})
        if missing or extra:
            msg = []
            if missing:
                msg.append(f"images without a label: {short_list(missing)}")
            if extra:
                msg.append(f"labels without an image: {short_list(extra)}")
            raise InputError(f"{root}: cannot pair imagesTr/ and labelsTr/: " + "; ".join(msg))
        cases = [Case(c.case_id, c.images, labs.get(c.case_id)) for c in cases]
    test_cases = group(root / "imagesTs") if (root / "imagesTs").is_dir() and list_images(root / "imagesTs") else []
    return Dataset(root, "msd", cases, label_names=label_names, channel_names=channel_names,
                   test_cases=test_cases, meta={"dataset_json": info, "file_ending": ending})
