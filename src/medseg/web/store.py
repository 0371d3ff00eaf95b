"""The cases ``medseg serve`` shows: every served root's cases, their images, labels and saves.

Each root is any dataset layout [`medseg.io.load_dataset`][] reads (``images/`` +
``labels/``, an npy pair, MSD), or a plain folder of images (their labels then go to
``ROOT/labels/``). A case is known by an id (its case id, prefixed ``N:`` with the root's
index when several roots are served); ids are looked up, never turned into paths, and every
file a case names must lie inside its root (symlinks resolved), so nothing outside the roots
is read or written.

Saving a label map writes it in the dataset's own layout and format with the image's
geometry, atomically; the previous file is copied first into a history folder beside the
labels (``labels_history/``, names stamped with the time). Each label has an ETag; a save
whose ETag is stale (the file changed since it was loaded) raises `Conflict`.

Examples
--------
>>> import tempfile
>>> from medseg.testing import make_dataset
>>> root = make_dataset(Path(tempfile.mkdtemp()) / "d", n=2, shape=(16, 16))
>>> store = Store([root])
>>> [c["id"] for c in store.cases()]
['case_000', 'case_001']
"""
from __future__ import annotations

import collections
import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medseg.errors import InputError
from medseg.image import Image
from medseg.io import list_images, load_dataset, read_image, read_label, strip_suffix, write_image
from medseg.io.atomic import atomic_path, atomic_write_text
from medseg.io.base import format_for, image_suffix
from medseg.io.datasets import Case, Dataset, labelled_rows, labelled_rows_file
from medseg.web.errors import Conflict, Forbidden, NotFound, PreconditionRequired
from medseg.web.nifti_bytes import as_integer, decode_label, encode

__all__ = ["Entry", "Root", "Store", "file_etag", "inside"]

log = logging.getLogger(__name__)

#: the ETag of a label that does not exist yet (a save with it creates the file)
NO_LABEL = '"none"'


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies inside ``root``.

    Parameters
    ----------
    path, root : Path

    Returns
    -------
    bool

    Examples
    --------
    >>> inside(Path("/tmp/a/../b"), Path("/tmp/a"))
    False
    """
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return False
    return True


def file_etag(path: Path) -> str:
    """An ETag for the file ``path``: changes whenever it is replaced or modified.

    Parameters
    ----------
    path : Path

    Returns
    -------
    str
        Quoted, ``'"none"'`` when the file does not exist.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return NO_LABEL
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"'


@dataclass
class Root:
    """One served root: its folder, dataset (None for a plain image folder) and label names.

    Parameters
    ----------
    index : int
    path : Path
    dataset : Dataset or None
    label_names : dict of int to str
    """

    index: int
    path: Path
    dataset: Dataset | None
    label_names: dict[int, str] = field(default_factory=dict)

    @property
    def layout(self) -> str:
        """``folders``, ``npy``, ``msd`` or ``plain`` (a folder of images without a layout)."""
        return self.dataset.layout if self.dataset is not None else "plain"


@dataclass
class Entry:
    """One case as served: its id, root, dataset case and where its label is (or will be) stored.

    Parameters
    ----------
    id : str
    root : Root
    case : Case
    label_path : Path
        The label file (for npy datasets the labels stack).
    test : bool
        An MSD ``imagesTs`` case.
    """

    id: str
    root: Root
    case: Case
    label_path: Path
    test: bool = False


def _label_suffix(image_path: Path) -> str:
    if image_path.is_dir():
        return ".nii.gz"
    suf = image_suffix(image_path)
    if suf in (".jpg", ".jpeg"):
        return ".png"  # never store labels lossily
    try:
        fmt = format_for(Path("x" + suf), for_writing=True)
    except InputError:
        return ".nii.gz"
    return suf if fmt.write is not None else ".nii.gz"


class Store:
    """The served cases: listing, loading, label saving with ETags and history.

    Parameters
    ----------
    roots : sequence of str or Path
        Dataset folders (any layout [`medseg.io.load_dataset`][] reads) or plain folders of images.
    cache : int
        How many decoded images to keep in memory.

    Raises
    ------
    InputError
        A root that is neither a dataset nor a folder holding images.
    """

    def __init__(self, roots: Sequence[str | Path], *, cache: int = 8) -> None:
        if not roots:
            raise InputError("give at least one dataset folder to serve")
        self.roots: list[Root] = []
        self.entries: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._file_locks: dict[Path, threading.Lock] = collections.defaultdict(threading.Lock)
        self._images: collections.OrderedDict[str, tuple[str, Image]] = collections.OrderedDict()
        self._encoded: collections.OrderedDict[str, tuple[str, bytes]] = collections.OrderedDict()
        self._info: dict[str, tuple[str, dict[str, Any]]] = {}
        self._cache = cache
        multi = len(roots) > 1
        for i, r in enumerate(roots):
            root = self._open_root(i, Path(r))
            self.roots.append(root)
            for e in self._entries(root):
                e.id = f"{i}:{e.id}" if multi else e.id
                self.entries[e.id] = e

    # ------------------------------------------------------------------ building
    @staticmethod
    def _open_root(i: int, path: Path) -> Root:
        if not path.exists():
            raise InputError(f"{path}: no such folder")
        try:
            ds = load_dataset(path, partial=True)  # images not labelled yet are cases too
        except InputError:
            if not path.is_dir() or not list_images(path):
                raise
            return Root(i, path, None)
        names = dict(ds.label_names) or {0: "background", 1: "foreground"}
        return Root(i, path if path.is_dir() else path.parent, ds, names)

    def _entries(self, root: Root) -> list[Entry]:
        out: list[Entry] = []
        ds = root.dataset
        if ds is None:
            labels_dir = root.path / "labels"
            labs = {strip_suffix(p): p for p in list_images(labels_dir)} if labels_dir.is_dir() else {}
            for p in list_images(root.path):
                if p.is_dir() and p.name in ("labels", "labels_history", "models"):
                    continue
                cid = strip_suffix(p)
                out.append(Entry(cid, root, Case(cid, (p,), labs.get(cid)),
                                 labs.get(cid) or labels_dir / f"{cid}{_label_suffix(p)}"))
            if not root.label_names:
                root.label_names = {0: "background", 1: "foreground"}
        elif ds.layout == "npy":
            lab = Path(ds.meta.get("labels_file") or root.path / "labels.npy")
            out = [Entry(c.case_id, root, c, lab) for c in ds.cases]
        elif ds.layout == "msd":
            ending = ds.meta.get("file_ending")
            for test, cases in ((False, ds.cases), (True, ds.test_cases)):
                folder = root.path / ("labelsTs" if test else "labelsTr")
                for c in cases:
                    label = c.label
                    if label is None:
                        cand = folder / f"{c.case_id}{ending or _label_suffix(c.images[0])}"
                        label = cand
                        if cand.is_file():
                            c = Case(c.case_id, c.images, cand)
                    out.append(Entry(c.case_id, root, c, label, test))
        else:
            labels_dir = Path(ds.meta.get("labels_dir") or root.path / "labels")
            for c in ds.cases:
                out.append(Entry(c.case_id, root, c,
                                 c.label or labels_dir / f"{strip_suffix(c.images[0])}{_label_suffix(c.images[0])}"))
        kept = []
        for e in out:
            files = [*e.case.images, e.label_path, e.label_path.parent]
            bad = [p for p in files if (p.exists() or p.is_symlink()) and not inside(p, root.path)]
            if bad:
                log.warning("case %s skipped: %s lies outside %s", e.id, bad[0], root.path)
                continue
            kept.append(e)
        return kept

    # ------------------------------------------------------------------ lookup
    def get(self, case_id: str) -> Entry:
        """The case ``case_id``.

        Parameters
        ----------
        case_id : str

        Returns
        -------
        Entry

        Raises
        ------
        NotFound
        """
        e = self.entries.get(case_id)
        if e is None:
            raise NotFound(f"no case '{case_id}'")
        return e

    def image_etag(self, e: Entry) -> str:
        """The ETag of the case's image (its files' ETags combined)."""
        tags = "".join(file_etag(p) for p in e.case.images)
        return '"' + hashlib.sha1(tags.encode()).hexdigest()[:20] + '"'

    def label_etag(self, e: Entry) -> str:
        """The ETag of the case's label map (``'"none"'`` when it has none)."""
        if e.root.layout == "npy":
            if not e.label_path.is_file():
                return NO_LABEL
            rows = labelled_rows(e.label_path)
            if rows is not None and e.case.index not in rows:
                return NO_LABEL
            row = np.load(e.label_path, mmap_mode="r", allow_pickle=False)[e.case.index]
            return '"' + hashlib.sha1(np.ascontiguousarray(row).tobytes()).hexdigest()[:20] + '"'
        return file_etag(e.label_path)

    def has_label(self, e: Entry) -> bool:
        """True when the case has a label map on disk."""
        return self.label_etag(e) != NO_LABEL

    # ------------------------------------------------------------------ loading
    def image(self, case_id: str) -> Image:
        """The case's image (cached while its files are unchanged).

        Parameters
        ----------
        case_id : str

        Returns
        -------
        Image
        """
        e = self.get(case_id)
        tag = self.image_etag(e)
        with self._lock:
            hit = self._images.get(case_id)
            if hit and hit[0] == tag:
                self._images.move_to_end(case_id)
                return hit[1]
        if e.root.dataset is not None:
            img = e.root.dataset.load_image(e.case)
        else:
            img = read_image(e.case.images[0])
        with self._lock:
            self._images[case_id] = (tag, img)
            while len(self._images) > self._cache:
                self._images.popitem(last=False)
        return img

    def image_bytes(self, case_id: str) -> tuple[bytes, str]:
        """The case's image as ``.nii.gz`` bytes, and its ETag.

        Parameters
        ----------
        case_id : str

        Returns
        -------
        (bytes, str)
        """
        e = self.get(case_id)
        tag = self.image_etag(e)
        with self._lock:
            hit = self._encoded.get(case_id)
            if hit and hit[0] == tag:
                return hit[1], tag
        data = encode(self.image(case_id))
        with self._lock:
            self._encoded[case_id] = (tag, data)
            while len(self._encoded) > self._cache:
                self._encoded.popitem(last=False)
        return data, tag

    def label(self, case_id: str) -> Image | None:
        """The case's label map on the image's grid, or None when it has none.

        Parameters
        ----------
        case_id : str

        Returns
        -------
        Image or None
        """
        e = self.get(case_id)
        if not self.has_label(e):
            return None
        img = self.image(case_id)
        if e.root.layout == "npy":
            stack = np.load(e.label_path, mmap_mode="r", allow_pickle=False)
            row = np.asarray(stack[e.case.index])
            if row.ndim > img.ndim:
                row = row[..., 0] if row.shape[-1] == 1 else np.argmax(row, axis=-1)
            arr = as_integer(row)
        else:
            lab = read_label(e.label_path)
            if lab.shape != img.shape:
                raise InputError(f"{e.label_path}: label shape {lab.shape} does not match the image {img.shape}")
            arr = lab.array
        return Image(arr, img.spacing, img.origin, img.direction, meta={k: v for k, v in img.meta.items()
                                                                         if k.startswith("nifti")})

    def label_bytes(self, case_id: str) -> tuple[bytes, str]:
        """The case's label map as ``.nii.gz`` bytes on the image's grid, and its ETag.

        Raises
        ------
        NotFound
            The case has no label map.
        """
        e = self.get(case_id)
        tag = self.label_etag(e)
        lab = self.label(case_id)
        if lab is None:
            raise NotFound(f"case '{case_id}' has no label map")
        return encode(lab), tag

    def info(self, case_id: str) -> dict[str, Any]:
        """The case's listing entry: ``id``, ``root``, ``shape``, ``spacing``, ``labelled``, ``modified``.

        Parameters
        ----------
        case_id : str

        Returns
        -------
        dict
        """
        e = self.get(case_id)
        tag = self.image_etag(e)
        hit = self._info.get(case_id)
        if hit is None or hit[0] != tag:
            img = self.image(case_id)
            geo = {"shape": list(img.shape), "spacing": list(img.spacing), "channels": img.n_channels,
                   "ndim": img.ndim}
            self._info[case_id] = hit = (tag, geo)
        labelled = self.has_label(e)
        modified = None
        if labelled and e.label_path.exists():
            modified = _dt.datetime.fromtimestamp(e.label_path.stat().st_mtime).isoformat(timespec="seconds")
        return {"id": e.id, "root": e.root.index, "case": e.case.case_id, **hit[1], "labelled": labelled,
                "modified": modified, "test": e.test}

    def cases(self) -> list[dict[str, Any]]:
        """`info` of every case, in order."""
        return [self.info(i) for i in self.entries]

    # ------------------------------------------------------------------ saving
    @staticmethod
    def _history(path: Path, layout: str) -> Path:
        """Where the current ``path`` is kept before a save: ``labels_history/`` beside the labels."""
        if layout == "npy":
            folder = path.parent / "labels_history"
        else:
            folder = path.parent.parent / f"{path.parent.name}_history"
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
        suffix = image_suffix(path)
        return folder / f"{path.name[:len(path.name) - len(suffix)]}.{stamp}{suffix}"

    def _keep_history(self, path: Path, root: Path, layout: str) -> Path | None:
        if not path.is_file():
            return None
        dest = self._history(path, layout)
        if not inside(dest.parent if dest.parent.exists() else dest.parent.parent, root):
            raise Forbidden(f"the history folder {dest.parent} lies outside {root}")
        with atomic_path(dest) as tmp:
            shutil.copyfile(path, tmp)
        return dest

    def save_label(self, case_id: str, data: bytes, if_match: str | None) -> str:
        """Save the NIfTI bytes ``data`` as the case's label map; return the new ETag.

        Parameters
        ----------
        case_id : str
        data : bytes
            NIfTI-1 (or gzip) bytes of an integer map on the image's grid.
        if_match : str or None
            The ETag the client loaded (``'"none"'`` for a case without a label).

        Returns
        -------
        str

        Raises
        ------
        PreconditionRequired
            No ``if_match``.
        Conflict
            The label changed on disk since it was loaded.
        GeometryError, InputError
            Another grid, non-integer values, or not NIfTI.
        """
        e = self.get(case_id)
        if not if_match:
            raise PreconditionRequired("a save needs the If-Match header (the label's ETag)")
        img = self.image(case_id)
        arr = decode_label(data, img)
        path = e.label_path
        root = e.root.path
        if not inside(path.parent if path.parent.exists() else root, root) or (
                path.is_symlink() and not inside(path, root)):
            raise Forbidden(f"{path} lies outside the served folder {root}")
        with self._lock:
            lock = self._file_locks[path]
        with lock:
            current = self.label_etag(e)
            if if_match.strip() not in (current, "*"):
                raise Conflict(f"the label of case '{case_id}' changed on disk since it was loaded "
                               "(reload it, then save again)")
            self._keep_history(path, root, e.root.layout)
            if e.root.layout == "npy":
                self._save_npy(e, arr)
            else:
                self._save_file(e, img, arr)
            return self.label_etag(e)

    def _save_file(self, e: Entry, img: Image, arr: np.ndarray) -> None:
        path = e.label_path
        old = None
        if path.is_file():
            try:
                old = read_label(path)
            except InputError:
                old = None
        if old is not None and old.shape == arr.shape:
            lab = old.with_array(arr.astype(old.array.dtype) if int(arr.max(initial=0)) <= np.iinfo(
                old.array.dtype).max else arr) if old.array.dtype.kind in "iu" else old.with_array(arr)
        else:
            lab = Image(arr, img.spacing, img.origin, img.direction,
                        meta={k: v for k, v in img.meta.items() if k.startswith("nifti")})
        if image_suffix(path) in (".png", ".bmp", ".gif") and int(arr.max(initial=0)) > 255 \
                and arr.dtype != np.uint16:
            lab = lab.with_array(arr.astype(np.uint16))
        write_image(lab, path)
        if e.case.label is None:
            e.case = Case(e.case.case_id, e.case.images, path, e.case.roi, e.case.index)

    def _save_npy(self, e: Entry, arr: np.ndarray) -> None:
        path = e.label_path
        ds = e.root.dataset
        assert ds is not None and e.case.index is not None
        side = labelled_rows_file(path)
        if path.is_file():
            stack = np.array(np.load(path, allow_pickle=False))
            rows = labelled_rows(path)
        else:  # a new stack: its other rows are not labels yet, and the sidecar says so
            n = len(ds.cases)
            stack = np.zeros((n, *arr.shape), dtype=np.uint8)
            rows = set()
        row = stack[e.case.index]
        if row.ndim > arr.ndim and row.shape[-1] > 1:  # one-hot (..., K)
            k = row.shape[-1]
            if int(arr.max(initial=0)) >= k:
                raise InputError(f"label value {int(arr.max())} does not fit the one-hot stack of {k} classes")
            stack[e.case.index] = np.eye(k, dtype=stack.dtype)[arr]
        else:
            if int(arr.max(initial=0)) > np.iinfo(stack.dtype).max if stack.dtype.kind in "iu" else False:
                stack = stack.astype(np.uint16)
            stack[e.case.index] = arr.reshape(row.shape)
        if rows is not None:  # the sidecar first: a row listed whose stack is not yet written reads as before
            atomic_write_text(side, json.dumps(sorted(rows | {int(e.case.index)})))
        with atomic_path(path) as tmp:
            np.save(tmp, stack, allow_pickle=False)
            if not str(tmp).endswith(".npy"):  # np.save appends .npy to other names
                os.replace(str(tmp) + ".npy", tmp)
