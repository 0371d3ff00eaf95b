"""Atomic writes: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from medseg.errors import OutputExistsError

__all__ = ["atomic_path", "atomic_files", "atomic_write_text", "atomic_write_bytes", "atomic_dir",
           "refuse_existing", "replacing"]


def _suffixes(path: Path) -> str:
    name = path.name
    for multi in (".nii.gz", ".tar.gz"):
        if name.lower().endswith(multi):
            return name[-len(multi):]
    return path.suffix


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary name keeps the target's suffix so libraries that choose a format by
    suffix (nibabel, SimpleITK, Pillow) still work. On error the temporary file is removed
    and the target is left untouched. Missing parent folders are created.

    Parameters
    ----------
    path : str or Path
        The final file.

    Yields
    ------
    Path
        The temporary file to write.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{_suffixes(target)}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_files(path: str | Path) -> Iterator[Path]:
    """Like `atomic_path` for formats that write companion files (``.mhd`` + ``.zraw``,
    ``.nhdr`` + ``.raw.gz``) named after the target and referenced from it.

    Yields a path with the target's *final* name inside a temporary folder beside it, so
    references inside the header name the final companion files. On success the
    companions are moved into place first and the main file last: a reader never sees a
    header pointing at a missing or temporary data file.

    Parameters
    ----------
    path : str or Path
        The final main file (e.g. ``scan.mhd``).

    Yields
    ------
    Path
        ``<temporary folder>/<final name>``: the main file to write; companions go beside it.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp_dir / target.name
        main = tmp_dir / target.name
        if not main.is_file():
            raise FileNotFoundError(f"the writer did not create {target.name}")
        for f in sorted(tmp_dir.iterdir()):
            if f.name != target.name:
                os.replace(f, target.parent / f.name)
        os.replace(main, target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_path`).

    Parameters
    ----------
    path : str or Path
    data : bytes

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
    text : str

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> atomic_write_text(Path(tempfile.mkdtemp()) / "a.json", "{}").name
    'a.json'
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name, then move it to ``path`` in one rename.

    An existing folder at ``path`` is replaced only after the new one is complete.

    Parameters
    ----------
    path : str or Path
        The final folder.
    overwrite : bool
        Replace an existing folder (else `FileExistsError` at the end).

    Yields
    ------
    Path
        The temporary folder to fill.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            if not overwrite:
                raise FileExistsError(target)
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _exists(path: Path) -> bool:
    """A file, or a folder that is not empty (an empty folder is nothing to lose)."""
    if path.is_dir():
        return any(path.iterdir())
    return path.exists() or path.is_symlink()


def refuse_existing(paths: Iterable[str | Path], *, force: bool, where: str | Path | None = None,
                    flag: str = "--force", also: str = "") -> None:
    """The overwrite rule of every command that writes: existing outputs are replaced only when asked.

    Call it before any work is done, with every path the command will write, so that a refusal
    costs nothing and leaves nothing behind. An empty folder does not count as existing.

    Parameters
    ----------
    paths : iterable of str or Path
        The files (or folders) the command would write.
    force : bool
        Replacing was asked for (``--force``): nothing is refused.
    where : str or Path, optional
        The output folder, named in the message when several outputs exist.
    flag : str
        The option that allows replacing, named in the message.
    also : str
        Further advice appended to the message (e.g. ``"or --resume to continue the run"``).

    Raises
    ------
    OutputExistsError
        Some of ``paths`` exist and ``force`` is false; the message names them (up to three)
        and says how many.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "a.nii.gz").write_bytes(b"x")
    >>> refuse_existing([root / "b.nii.gz"], force=False)
    >>> refuse_existing([root / "a.nii.gz"], force=True)
    >>> try:
    ...     refuse_existing([root / "a.nii.gz", root / "b.nii.gz"], force=False, where=root)
    ... except OutputExistsError as exc:
    ...     print(str(exc).replace(str(root), "OUT"))
    OUT: 1 of 2 outputs exist already (a.nii.gz); add --force to replace them
    """
    if force:
        return
    targets = [Path(p) for p in paths]
    present = [p for p in targets if _exists(p)]
    if not present:
        return
    extra = f", {also}" if also else ""
    if len(targets) == 1:
        kind = "folder" if present[0].is_dir() else "file"
        raise OutputExistsError(f"{present[0]}: the {kind} exists already; add {flag} to replace it{extra}")
    names = ", ".join(p.name for p in present[:3]) + (f" and {len(present) - 3} more" if len(present) > 3 else "")
    head = f"{where}: " if where is not None else ""
    raise OutputExistsError(f"{head}{len(present)} of {len(targets)} outputs exist already ({names}); "
                            f"add {flag} to replace them{extra}")


@contextlib.contextmanager
def replacing(path: str | Path, *, force: bool, flag: str = "--force", also: str = "") -> Iterator[Path]:
    """Write a whole folder (a model) in place of an existing one, which is restored on failure.

    Without ``force`` an existing non-empty folder is refused (`refuse_existing`). With it,
    the old folder is moved aside under a hidden name; it is deleted once the block succeeds and
    put back if the block fails or is interrupted (the new, partial folder is then removed), so
    a failed command leaves what was there.

    Parameters
    ----------
    path : str or Path
        The folder to write.
    force : bool
        Replacing an existing folder was asked for.
    flag, also : str
        As in `refuse_existing`.

    Yields
    ------
    Path
        ``path``, free to be written.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "model").mkdir(), (root / "model" / "old.txt").write_text("old")
    >>> try:
    ...     with replacing(root / "model", force=True) as d:
    ...         d.mkdir()
    ...         raise RuntimeError("training failed")
    ... except RuntimeError:
    ...     pass
    >>> sorted(p.name for p in (root / "model").iterdir())
    ['old.txt']
    """
    target = Path(path)
    refuse_existing([target], force=force, flag=flag, also=also)
    if not _exists(target):
        yield target
        return
    backup = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    if backup.exists():
        shutil.rmtree(backup) if backup.is_dir() else backup.unlink()
    os.replace(target, backup)
    try:
        yield target
    except BaseException:
        if target.exists():
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink()
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True) if backup.is_dir() else backup.unlink(missing_ok=True)
