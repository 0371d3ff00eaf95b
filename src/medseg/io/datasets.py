"""Dataset layouts: folders, explicit image/label/roi folders, npy pairs, nnU-Net/MSD.

A :class:`Dataset` is a list of :class:`Case` records plus loaders; images are read
lazily, so large datasets are never held in memory at once.

Layouts
-------
``folders``
    ``ROOT/images/`` with ``ROOT/labels/`` (or ``masks/``) and optionally ``ROOT/roi/``
    (or ``fov/``); or the same three folders given explicitly.
``npy``
    ``images.npy`` shaped ``(N,H,W)``, ``(N,H,W,C)``, ``(N,D,H,W)`` or ``(N,D,H,W,C)``
    and ``labels.npy`` shaped ``(N,H,W)`` (integers) or ``(N,H,W,K)`` (one-hot).
``msd``
    the nnU-Net v2 / Medical Segmentation Decathlon raw layout: ``imagesTr/``,
    ``labelsTr/``, ``imagesTs/``, ``dataset.json``, channels as ``CASE_0000``, ``CASE_0001``.

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

from medseg.errors import GeometryError, InputError
from medseg.image import Image, same_grid
from medseg.io.base import as_label, is_image_file, read_image, read_label, strip_suffix

__all__ = ["Case", "Dataset", "load_dataset", "list_images", "pair_files", "case_key"]

LABEL_DIRS = ("labels", "masks", "label", "mask_labels", "gt", "ground_truth", "segmentations")
ROI_DIRS = ("roi", "rois", "fov")
IMAGE_DIRS = ("images", "image", "imgs")


@dataclass(frozen=True)
class Case:
    """One case: its channel files (or npy index), label and ROI sources."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None
    roi: Path | None = None
    index: int | None = None  # position in an npy stack


@dataclass
class Dataset:
    """A segmentation dataset: cases plus lazy loaders.

    Examples
    --------
    >>> ds = load_dataset("data/")            # doctest: +SKIP
    >>> img, lab = ds.load_image(ds.cases[0]), ds.load_label(ds.cases[0])  # doctest: +SKIP
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
        return len(self.cases)

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    @property
    def case_ids(self) -> list[str]:
        return [c.case_id for c in self.cases]

    @property
    def has_labels(self) -> bool:
        return any(c.label is not None or (c.index is not None and "labels" in self._arrays) for c in self.cases)

    @property
    def has_roi(self) -> bool:
        return any(c.roi is not None for c in self.cases)

    def case(self, case_id: str) -> Case:
        for c in self.cases + self.test_cases:
            if c.case_id == case_id:
                return c
        raise InputError(f"no case '{case_id}' in {self.root}")

    # ------------------------------------------------------------------ loading
    def load_image(self, case: Case) -> Image:
        """The case's image; several channel files are stacked on a channel axis."""
        if case.index is not None:
            return self._npy_image(case.index)
        imgs = [read_image(p) for p in case.images]
        if len(imgs) == 1:
            return imgs[0]
        ref = imgs[0]
        for p, im in zip(case.images[1:], imgs[1:]):
            if im.has_channels:
                raise InputError(f"{p}: channel files must be single-channel images")
            if not same_grid(ref, im):
                raise GeometryError(f"{p}: channel is not on the same grid as {case.images[0].name} "
                                    f"(shape {im.shape} vs {ref.shape}, spacing {im.spacing} vs {ref.spacing})")
        stack = np.stack([im.array for im in imgs])
        return Image(stack, ref.spacing, ref.origin, ref.direction, {**dict(ref.meta), "channel_files": [str(p) for p in case.images]})

    def load_label(self, case: Case, image: Image | None = None) -> Image | None:
        """The case's label map (None when it has none); checked against ``image`` if given."""
        if case.index is not None:
            lab = self._npy_label(case.index)
        elif case.label is None:
            return None
        else:
            lab = read_label(case.label)
        if image is not None:
            check_pair(image, lab, case.label or self.root, what="label map")
        return lab

    def load_roi(self, case: Case, image: Image | None = None) -> Image | None:
        """The case's region of interest as a 0/1 uint8 map (None when absent)."""
        if case.roi is None:
            return None
        roi = read_label(case.roi)
        roi = roi.with_array((roi.array > 0).astype(np.uint8))
        if image is not None:
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


def check_pair(image: Image, other: Image, path, *, what: str) -> None:
    if other.shape != image.shape:
        raise GeometryError(f"{path}: {what} shape {other.shape} does not match the image shape {image.shape}")
    if not same_grid(image, other, atol=1e-3):
        raise GeometryError(
            f"{path}: {what} geometry does not match the image (spacing {other.spacing} vs {image.spacing}, "
            f"origin {other.origin} vs {image.origin}); resample it onto the image grid first"
        )


# ---------------------------------------------------------------------- listing and pairing
def list_images(folder: Path) -> list[Path]:
    """Image files (and DICOM series sub-folders) in ``folder``, sorted by name."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name.endswith(".json"):
            continue
        if is_image_file(p):
            out.append(p)
        elif p.is_dir() and _is_dicom_dir(p):
            out.append(p)
    return out


def _is_dicom_dir(p: Path) -> bool:
    from medseg.io.dicom import looks_like_dicom

    for i, f in enumerate(sorted(p.iterdir())):
        if i > 20:
            break
        if f.is_file() and (f.suffix.lower() == ".dcm" or looks_like_dicom(f)):
            return True
    return False


def case_key(path: Path, rule: str) -> str:
    stem = strip_suffix(path)
    if rule == "stem":
        return stem
    if rule == "lead":
        return re.split(r"[_\-. ]", stem, maxsplit=1)[0]
    m = re.search(r"\d+", stem)
    return str(int(m.group())) if m else stem


def pair_files(images: Sequence[Path], others: dict[str, Sequence[Path]]) -> list[tuple[str, Path, dict[str, Path]]]:
    """Pair each image with one file of each other group (labels, roi).

    Tries identical stems, then the leading case id, then the first number in the name.
    Returns ``[(case_id, image, {group: path})]``; raises :class:`InputError` listing
    unpaired or ambiguous files.
    """
    images = list(images)
    if not images:
        raise InputError("no image files found")
    problems: list[str] = []
    for rule in ("stem", "lead", "number"):
        keys = [case_key(p, rule) for p in images]
        if len(set(keys)) != len(keys):
            continue  # the rule does not identify images uniquely
        ok = True
        matched: dict[str, dict[str, Path]] = {k: {} for k in keys}
        for group, files in others.items():
            gkeys: dict[str, list[Path]] = {}
            for f in files:
                gkeys.setdefault(case_key(f, rule), []).append(f)
            dup = {k: v for k, v in gkeys.items() if len(v) > 1}
            unmatched_img = [p.name for p, k in zip(images, keys) if k not in gkeys]
            extra = [f.name for k, v in gkeys.items() if k not in matched for f in v]
            if dup or unmatched_img or extra:
                ok = False
                if rule == "number":
                    if dup:
                        problems.append(f"{group}: ambiguous matches " + "; ".join(f"{k}: {', '.join(x.name for x in v)}" for k, v in list(dup.items())[:10]))
                    if unmatched_img:
                        problems.append(f"images without {group}: {_short(unmatched_img)}")
                    if extra:
                        problems.append(f"{group} without an image: {_short(extra)}")
                break
            for k, v in gkeys.items():
                matched[k][group] = v[0]
        if ok:
            ids = [strip_suffix(p) if rule == "stem" else k for p, k in zip(images, keys)]
            return [(cid, p, matched[k]) for cid, p, k in zip(ids, images, keys)]
    if not problems:
        problems.append("image names do not identify cases uniquely: " + _short([p.name for p in images]))
    raise InputError("cannot pair the dataset's files: " + " | ".join(problems))


def _short(names: list[str], n: int = 8) -> str:
    return ", ".join(names[:n]) + (f" … (+{len(names) - n} more)" if len(names) > n else "")


# ---------------------------------------------------------------------- layouts
def _find_dir(root: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        if (root / n).is_dir():
            return root / n
    return None


def load_dataset(path: str | Path | None = None, *, images: str | Path | None = None,
                 labels: str | Path | None = None, roi: str | Path | None = None,
                 require_labels: bool = False) -> Dataset:
    """Open a dataset in any supported layout.

    Parameters
    ----------
    path : folder (``images/`` + ``labels/``, MSD layout, or one holding ``images.npy``)
        or an ``images.npy`` file. Omit it when giving ``images=`` explicitly.
    images, labels, roi : explicit folders (layout ``folders``).
    require_labels : raise when the dataset has no labels.
    """
    if images is not None:
        ds = _folders(Path(images), Path(labels) if labels else None, Path(roi) if roi else None,
                      root=Path(path) if path else Path(images).parent)
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
            ds = _msd(root)
        elif (root / "images.npy").is_file() or (root / "images.npz").is_file():
            ds = _npy(root / ("images.npy" if (root / "images.npy").is_file() else "images.npz"), None)
        else:
            img_dir = _find_dir(root, IMAGE_DIRS)
            if img_dir is None:
                raise InputError(
                    f"{root}: not a dataset: expected images/ (+ labels/, roi/), imagesTr/ + dataset.json, "
                    f"or images.npy + labels.npy; or pass --images/--labels explicitly"
                )
            ds = _folders(img_dir, _find_dir(root, LABEL_DIRS), _find_dir(root, ROI_DIRS), root=root)
    if require_labels and not ds.has_labels:
        raise InputError(f"{ds.root}: the dataset has no labels (expected a labels folder or labels.npy)")
    return ds


def _folders(img_dir: Path, lab_dir: Path | None, roi_dir: Path | None, *, root: Path) -> Dataset:
    imgs = list_images(img_dir)
    if not imgs:
        raise InputError(f"{img_dir}: no image files found")
    others = {}
    if lab_dir is not None:
        others["labels"] = list_images(lab_dir)
    if roi_dir is not None:
        others["roi"] = list_images(roi_dir)
    pairs = pair_files(imgs, others)
    cases = [Case(cid, (img,), g.get("labels"), g.get("roi")) for cid, img, g in pairs]
    return Dataset(root, "folders", cases, meta={"images_dir": str(img_dir),
                                                  "labels_dir": str(lab_dir) if lab_dir else None,
                                                  "roi_dir": str(roi_dir) if roi_dir else None})


def _load_array(path: Path) -> np.ndarray:
    from medseg.errors import FormatError

    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                return z[keys[0]]
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: cannot read the array ({exc})") from None


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
    cases = [Case(f"{i:0{width}d}", (images_path,), labels_path, None, index=i) for i in range(n)]
    arrays = {"images": imgs}
    if labs is not None:
        arrays["labels"] = labs
    return Dataset(root, "npy", cases, meta={"npy_spatial": spatial, "images_file": str(images_path),
                                              "labels_file": str(labels_path) if labels_path else None},
                   _arrays=arrays)


_CHANNEL_RE = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})$")


def _msd(root: Path) -> Dataset:
    info: dict[str, Any] = {}
    dj = root / "dataset.json"
    if dj.is_file():
        try:
            info = json.loads(dj.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{dj}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    img_dir = root / "imagesTr"
    if not img_dir.is_dir():
        raise InputError(f"{root}: dataset.json found but no imagesTr/ folder")
    # channel names and label names (nnU-Net v2: "channel_names", "labels" name->value;
    # MSD: "modality", "labels" value->name)
    channels = info.get("channel_names") or info.get("modality") or {}
    channel_names = [channels[k] for k in sorted(channels, key=lambda k: int(k))] if channels else []
    raw_labels = info.get("labels") or {}
    label_names: dict[int, str] = {}
    for k, v in raw_labels.items():
        if isinstance(v, (int, float)) or (isinstance(v, str) and v.isdigit() and not str(k).isdigit()):
            label_names[int(v)] = str(k)
        elif str(k).isdigit():
            label_names[int(k)] = str(v)
    ending = info.get("file_ending")

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
                raise InputError(f"{folder}: case {cid} lacks channel file(s) {', '.join(f'_{c:04d}' for c in missing)}")
            cases.append(Case(cid, tuple(chans[c] for c in want)))
        return cases

    cases = group(img_dir)
    lab_dir = root / "labelsTr"
    if lab_dir.is_dir():
        labs = {strip_suffix(p): p for p in list_images(lab_dir)}
        missing = [c.case_id for c in cases if c.case_id not in labs]
        extra = sorted(set(labs) - {c.case_id for c in cases})
        if missing or extra:
            msg = []
            if missing:
                msg.append(f"images without a label: {_short(missing)}")
            if extra:
                msg.append(f"labels without an image: {_short(extra)}")
            raise InputError(f"{root}: cannot pair imagesTr/ and labelsTr/: " + "; ".join(msg))
        cases = [Case(c.case_id, c.images, labs[c.case_id]) for c in cases]
    test_cases = group(root / "imagesTs") if (root / "imagesTs").is_dir() and list_images(root / "imagesTs") else []
    return Dataset(root, "msd", cases, label_names=label_names, channel_names=channel_names,
                   test_cases=test_cases, meta={"dataset_json": info, "file_ending": ending})
