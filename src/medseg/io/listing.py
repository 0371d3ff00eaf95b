"""Listing the images of a folder and pairing files of several folders by case.

Pairing: identical stems first; otherwise a shared leading case id (``21_training.tif``
<-> ``21_manual1.gif`` <-> ``21_training_mask.gif``); otherwise a shared number. Unpaired
or ambiguous files raise one error listing them.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from medseg.errors import InputError
from medseg.io.base import is_image_file, is_image_folder, strip_suffix

__all__ = ["list_images", "case_key", "pair_files", "short_list", "CHANNEL_SUFFIX", "PAIRING_RULES"]



def list_images(folder: Path) -> list[Path]:
    """Image files (and one-image folders such as DICOM series) in ``folder``, sorted by name.

    Hidden entries and ``.json`` files are skipped.

    Parameters
    ----------
    folder : Path

    Returns
    -------
    list of Path

    Raises
    ------
    InputError
        ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or p.name.endswith(".json"):
            continue
        if is_image_file(p) or is_image_folder(p):
            out.append(p)
    return out


CHANNEL_SUFFIX = re.compile(r"_\d{4}$")
"""An nnU-Net/MSD channel suffix at the end of a file name (``CASE_0000``)."""
PAIRING_RULES = ("stem", "channel", "lead", "number")
"""The pairing rules, best first."""


def case_key(path: Path, rule: str) -> str:
    """The case id of a file name under a pairing rule.

    Parameters
    ----------
    path : Path
        A file name (it need not exist).
    rule : {"stem", "channel", "lead", "number"}
        The whole name without suffix; the name without an nnU-Net channel suffix
        (``_0000``); its leading token (up to ``_``, ``-``, ``.`` or a space); or its first
        number, without leading zeros (the stem when it has none). Pairing tries them in this
        order, so a name is reduced to a number only when nothing better pairs.

    Returns
    -------
    str

    Examples
    --------
    >>> [case_key(Path("21_training.tif"), r) for r in ("stem", "lead", "number")]
    ['21_training', '21', '21']
    >>> case_key(Path("img_007.png"), "number")
    '7'
    >>> case_key(Path("hippocampus_003_0000.nii.gz"), "channel")
    'hippocampus_003'
    """
    stem = strip_suffix(path)
    if rule == "stem":
        return stem
    if rule == "channel":
        return CHANNEL_SUFFIX.sub("", stem)
    if rule == "lead":
        return re.split(r"[_\-. ]", stem, maxsplit=1)[0]
    m = re.search(r"\d+", stem)
    return str(int(m.group())) if m else stem


def pair_files(images: Sequence[Path], others: Mapping[str, Sequence[Path]], *, allow_extra: bool = False,
               optional: Collection[str] = ()) -> list[tuple[str, Path, dict[str, Path]]]:
    """Pair each image with one file of each other group (labels, roi).

    Tries identical stems, then the leading case id, then the first number in the name
    (see `case_key`); the first rule that identifies every image and pairs every file
    wins.

    Parameters
    ----------
    images : sequence of Path
        The image files.
    others : mapping of str to sequence of Path
        Other groups by name (``{"labels": [...], "roi": [...]}``).
    allow_extra : bool
        Files of the other groups that pair with no image are ignored instead of refused
        (e.g. a folder holding the ROIs of a whole dataset, for a few of its images).
    optional : collection of str
        Groups an image may lack (a dataset being annotated: some images have no label yet);
        every file of such a group must still pair with an image.

    Returns
    -------
    list of (str, Path, dict)
        ``(case_id, image, {group: path})`` in the order of ``images``.

    Raises
    ------
    InputError
        No images, or files left unpaired or ambiguous under every rule (listed).

    Examples
    --------
    >>> pair_files([Path("21_training.tif")], {"labels": [Path("21_manual1.gif")]})
    [('21', PosixPath('21_training.tif'), {'labels': PosixPath('21_manual1.gif')})]
    """
    images = list(images)
    if not images:
        raise InputError("no image files found")
    problems: list[str] = []
    for rule in PAIRING_RULES:
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
            unmatched_img = [] if group in optional else [p.name for p, k in zip(images, keys) if k not in gkeys]
            extra = [] if allow_extra else [f.name for k, v in gkeys.items() if k not in matched for f in v]
            if dup or unmatched_img or extra:
                ok = False
                if rule == "number":
                    if dup:
                        problems.append(f"{group}: ambiguous matches " + "; ".join(
                            f"{k}: {', '.join(x.name for x in v)}" for k, v in list(dup.items())[:10]))
                    if unmatched_img:
                        problems.append(f"images without {group}: {short_list(unmatched_img)}")
                    if extra:
                        problems.append(f"{group} without an image: {short_list(extra)}")
                break
            for k, v in gkeys.items():
                if k in matched:
                    matched[k][group] = v[0]
        if ok:
            ids = [strip_suffix(p) if rule == "stem" else k for p, k in zip(images, keys)]
            return [(cid, p, matched[k]) for cid, p, k in zip(ids, images, keys)]
    if not problems:
        problems.append("image names do not identify cases uniquely: " + short_list([p.name for p in images]))
    raise InputError("cannot pair the dataset's files: " + " | ".join(problems))


def short_list(names: list[str], n: int = 8) -> str:
    """The first ``n`` names, and how many more."""
    return ", ".join(names[:n]) + (f" … (+{len(names) - n} more)" if len(names) > n else "")
