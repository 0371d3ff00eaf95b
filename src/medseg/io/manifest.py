"""The manifest of a folder run: ``OUT/manifest.json``, what makes ``segment``/``predict`` restartable.

``medseg segment`` and ``medseg predict`` on a folder of images write ``OUT/manifest.json``
before the first case and rewrite it (atomically) after each one. It records the options
that decide the result and, per case, the input (with its size and modification time), the
files written (with theirs) and the state: ``pending``, ``done`` or ``failed`` (with the
one-line error). A command that is killed and started again with the same options skips
the ``done`` cases whose input is unchanged and whose outputs are still the files it wrote,
and redoes the rest.

The overwrite rule (`plan_run`), without ``--force``:

* OUT holds none of the outputs: the run starts.
* OUT holds a manifest written with the same options: the run resumes. It replaces only
  files the manifest says the run writes (a case's outputs, ``uncertainty.csv``); an output
  that a ``done`` case wrote and someone changed since, or an output of a case the manifest
  does not list, is refused as any existing output is.
* Otherwise (outputs without a manifest, a manifest of other options or of another medseg
  version of the format): today's refusal, naming the outputs that exist.

``--force`` replaces everything and starts a fresh manifest.

Manifest format (``version`` 1)::

    {"medseg_manifest": 1,
     "options": {...},                      # what decides the result (command, method, flags)
     "cases": {"a.png": {                   # key: the label map's name, relative to OUT
         "input": "/data/in/a.png", "input_stamp": [size, mtime_ns],
         "state": "done",                   # pending | done | failed
         "error": null,                     # failed: the one-line error
         "outputs": {"a.png": [size, mtime_ns], "a_prob.nii.gz": [...]},
         "rows": [...]}}}                   # the case's uncertainty.csv rows, if any

Examples
--------
>>> import tempfile
>>> out = Path(tempfile.mkdtemp())
>>> m = Manifest(out, {"method": "otsu"})
>>> m.set(out / "a.png", input=out / "a.png", state="pending")
>>> _ = m.write()
>>> Manifest.read(out).cases["a.png"]["state"]
'pending'
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from medseg.errors import OutputExistsError
from medseg.io.atomic import atomic_write_text, refuse_existing

__all__ = ["MANIFEST_NAME", "MANIFEST_VERSION", "Manifest", "stamp", "plan_run"]

MANIFEST_NAME = "manifest.json"
"""The manifest's file name in the output folder."""
MANIFEST_VERSION = 1
"""The format version written (and the only one resumed)."""


def stamp(path: str | Path) -> list[int] | None:
    """``[size, mtime_ns]`` of a file; of a folder (a DICOM series) the file count, total size
    and latest modification time of the files in it; None when missing.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of int or None

    Examples
    --------
    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "x.txt"
    >>> _ = f.write_text("abc")
    >>> stamp(f)[0], stamp(f.with_name("missing"))
    (3, None)
    """
    p = Path(path)
    try:
        if p.is_dir():
            stats = [f.stat() for f in sorted(p.rglob("*")) if f.is_file()]
            return [len(stats), sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)]
        s = p.stat()
    except OSError:
        return None
    return [int(s.st_size), int(s.st_mtime_ns)]


def _canonical(options: Mapping[str, Any]) -> Any:
    """Options as JSON would give them back (tuples become lists, paths strings)."""
    return json.loads(json.dumps(dict(options), sort_keys=True, default=str))


class Manifest:
    """The state of a folder run (see the module docstring).

    Parameters
    ----------
    out : str or Path
        The output folder (the manifest is ``out/manifest.json``).
    options : mapping
        The options that decide the result (JSON-serialisable; paths as strings).
    cases : mapping, optional
        The case records by output name (as read from a manifest).
    """

    def __init__(self, out: str | Path, options: Mapping[str, Any], cases: Mapping[str, dict] | None = None) -> None:
        self.out = Path(out)
        self.options = _canonical(options)
        self.cases: dict[str, dict[str, Any]] = dict(cases or {})

    @property
    def path(self) -> Path:
        """``out/manifest.json``."""
        return self.out / MANIFEST_NAME

    def key(self, dst: str | Path) -> str:
        """A case's key: its label map's path relative to the output folder."""
        p = Path(dst)
        try:
            return p.relative_to(self.out).as_posix()
        except ValueError:
            return p.as_posix()

    @classmethod
    def read(cls, out: str | Path) -> Manifest | None:
        """The manifest in ``out``, or None when there is none or it is not one medseg can resume.

        Parameters
        ----------
        out : str or Path

        Returns
        -------
        Manifest or None
        """
        path = Path(out) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("medseg_manifest") != MANIFEST_VERSION \
                or not isinstance(data.get("cases"), dict) or not isinstance(data.get("options"), dict):
            return None
        return cls(out, data["options"], data["cases"])

    def set(self, dst: str | Path, *, input: str | Path, state: str, error: str | None = None,
            outputs: Iterable[str | Path] = (), rows: Sequence[Any] = ()) -> None:
        """Record a case's state (with the current stamps of its input and outputs).

        Parameters
        ----------
        dst : str or Path
            The case's label map.
        input : str or Path
            Its input.
        state : {"pending", "done", "failed"}
        error : str, optional
            A failed case's error.
        outputs : iterable of path
            The files written for the case.
        rows : sequence
            Its uncertainty summary rows (kept to rewrite ``uncertainty.csv`` on resume).
        """
        if state not in ("pending", "done", "failed"):
            raise ValueError(f"unknown case state {state!r}")
        self.cases[self.key(dst)] = {
            "input": str(Path(input).resolve()), "input_stamp": stamp(input), "state": state, "error": error,
            "outputs": {self.key(p): stamp(p) for p in outputs}, "rows": _canonical({"r": list(rows)})["r"]}

    def is_done(self, dst: str | Path, src: str | Path) -> bool:
        """Whether a case is ``done`` for this input (same path, size and time) and its outputs are
        the files it wrote."""
        rec = self.cases.get(self.key(dst))
        if not rec or rec.get("state") != "done" or rec.get("input") != str(Path(src).resolve()):
            return False
        if rec.get("input_stamp") != stamp(src) or self.key(dst) not in rec.get("outputs", {}):
            return False
        return all(stamp(self.out / name) == s for name, s in rec["outputs"].items())

    def changed_outputs(self, dst: str | Path) -> list[Path]:
        """The outputs a ``done`` case wrote that were changed or removed since (not the run's to replace)."""
        rec = self.cases.get(self.key(dst))
        if not rec or rec.get("state") != "done":
            return []
        return [self.out / n for n, s in rec.get("outputs", {}).items()
                if (self.out / n).exists() and stamp(self.out / n) != s]

    def write(self) -> Path:
        """Write the manifest atomically; return its path."""
        cases = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in self.cases.items())  # one line a case
        text = (f'{{"medseg_manifest": {MANIFEST_VERSION},\n "options": {json.dumps(self.options, sort_keys=True)},\n'
                f' "cases": {{\n{cases}\n }}}}\n' if cases else
                json.dumps({"medseg_manifest": MANIFEST_VERSION, "options": self.options, "cases": {}}) + "\n")
        return atomic_write_text(self.path, text)

    def summary(self) -> dict[str, int]:
        """The number of cases in each state.

        Returns
        -------
        dict
            ``{"pending": n, "done": n, "failed": n}``.
        """
        out = {"pending": 0, "done": 0, "failed": 0}
        for rec in self.cases.values():
            out[rec.get("state", "pending")] = out.get(rec.get("state", "pending"), 0) + 1
        return out


def plan_run(out: str | Path, pairs: Sequence[tuple[Path, Path]], targets: Sequence[Path],
             options: Mapping[str, Any], *, force: bool) -> tuple[Manifest, set[int]]:
    """Apply the overwrite rule of a folder run and say which cases are done already.

    Parameters
    ----------
    out : str or Path
        The output folder.
    pairs : sequence of (Path, Path)
        ``(input, label map)`` of each case, in order.
    targets : sequence of Path
        Every path the run may write that exists already or will exist (label maps,
        probability and uncertainty maps found, ``uncertainty.csv``), as for
        [`refuse_existing`][medseg.io.atomic.refuse_existing].
    options : mapping
        The options that decide the result.
    force : bool
        ``--force``: replace everything, start afresh.

    Returns
    -------
    manifest : Manifest
        The manifest to continue (with the kept ``done`` records; the others are dropped).
    done : set of int
        The indices in ``pairs`` of the cases to skip.

    Raises
    ------
    OutputExistsError
        Outputs exist that the run may not replace (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> m, done = plan_run(out, [(Path("in/a.png"), out / "a.png")], [out / "a.png"], {"m": 1}, force=False)
    >>> done
    set()
    """
    out = Path(out)
    fresh = Manifest(out, options)
    if force:
        return fresh, set()
    old = Manifest.read(out)
    where = out if len(targets) > 1 else None
    if old is None or old.options != fresh.options:
        if old is not None and any(t.exists() for t in targets):
            raise OutputExistsError(f"{out}: holds the outputs of a run with other options ({MANIFEST_NAME}: "
                                    f"{_difference(old.options, fresh.options)}); add --force to replace them")
        refuse_existing(list(targets), force=False, where=where)
        return fresh, set()
    done: set[int] = set()
    owned: set[Path] = {out / "uncertainty.csv"}
    changed: list[Path] = []
    for i, (src, dst) in enumerate(pairs):
        key = old.key(dst)
        if old.is_done(dst, src):
            done.add(i)
            fresh.cases[key] = old.cases[key]
            continue
        changed += old.changed_outputs(dst)
        rec = old.cases.get(key)
        if rec is not None:  # the run's own case (pending, failed, done with another input): its files are its own
            owned.add(dst)
            owned.update(out / n for n in rec.get("outputs", {}))
            owned.update(t for t in targets if t.parent == dst.parent and t.name.startswith(_stem_of(dst) + "_"))
    kept = {out / n for i in done for n in old.cases[old.key(pairs[i][1])]["outputs"]}
    foreign = [t for t in targets if t.exists() and t not in owned and t not in kept]
    if changed or foreign:
        refuse_existing(list(targets), force=False, where=where)
    return fresh, done


def _stem_of(dst: Path) -> str:
    name = dst.name
    for multi in (".nii.gz", ".tar.gz"):
        if name.lower().endswith(multi):
            return name[: -len(multi)]
    return dst.stem


def _difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The first options that differ, as ``name: old -> new``."""
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = [f"{k} {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}" for k in keys[:2]]
    return ", ".join(shown) + (f" and {len(keys) - 2} more" if len(keys) > 2 else "")
