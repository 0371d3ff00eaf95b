"""Atomic writes: write to a temporary file beside the target, then rename."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_files", "atomic_write_text", "atomic_write_bytes", "atomic_dir"]


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
    """Like :func:`atomic_path` for formats that write companion files (``.mhd`` + ``.zraw``,
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
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

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
        Replace an existing folder (else :class:`FileExistsError` at the end).

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
