"""What native libraries print, captured in one place.

ITK (through SimpleITK) writes its complaints straight to the process's stderr or stdout, below
Python: "Uncompress failed", "data not read completely", "Cannot parse file". Printed, they
bury medseg's one line; ignored, they hide corruption (a MetaImage whose compressed data is
garbage reads "successfully"). `native_output` captures file descriptor 2 around a call,
so that the caller decides: a read that reported trouble fails with one clear error, and the
captured text goes to the debug log only.

Examples
--------
>>> with native_output() as out:
...     pass
>>> out.text
''
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator

__all__ = ["NativeOutput", "native_output", "itk_trouble", "LibraryMessages", "library_messages"]

log = logging.getLogger(__name__)

_LOCK = threading.Lock()  # fd 2 is process-wide: one capture at a time

#: words in ITK's own messages that mean a read or write went wrong
_TROUBLE = ("failed", "error", "cannot", "not read completely", "unable", "corrupt", "truncat", "invalid")


class NativeOutput:
    """The text native code wrote to stderr during a `native_output` block."""

    def __init__(self) -> None:
        self.text = ""

    def lines(self) -> list[str]:
        """The non-empty captured lines, stripped."""
        return [ln.strip() for ln in self.text.splitlines() if ln.strip()]


@contextlib.contextmanager
def native_output() -> Iterator[NativeOutput]:
    """Capture what native libraries write to file descriptors 1 and 2 during the block.

    Python's own ``sys.stdout``/``sys.stderr`` are flushed first, so nothing of medseg's is
    captured; the captured text is logged at DEBUG level (``medseg --debug`` shows it).

    Yields
    ------
    NativeOutput
        Its ``text`` is filled when the block ends.
    """
    out = NativeOutput()
    with _LOCK, contextlib.ExitStack() as stack:
        files = []
        for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):  # the descriptors C code writes to
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.flush()
            try:
                saved = os.dup(fd)
            except OSError:  # no such descriptor: nothing to capture there
                continue
            tmp = stack.enter_context(tempfile.TemporaryFile(mode="w+b"))
            os.dup2(tmp.fileno(), fd)
            files.append((fd, saved, tmp))
        try:
            yield out
        finally:
            _flush_c_streams()  # ITK writes through C stdio, buffered when not on a terminal
            texts = []
            for fd, saved, tmp in files:
                os.dup2(saved, fd)
                os.close(saved)
                tmp.seek(0)
                texts.append(tmp.read().decode("utf-8", "replace"))
            out.text = "".join(texts)
            if out.text.strip():
                log.debug("native library output: %s", out.text.strip())


def _flush_c_streams() -> None:
    """Flush the C library's stdio buffers (``fflush(NULL)``) where the platform allows."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(None).fflush(None)


def itk_trouble(out: NativeOutput) -> str | None:
    """The first captured line saying that ITK's read or write went wrong, or None.

    Examples
    --------
    >>> o = NativeOutput()
    >>> o.text = "Uncompress failed\\n"
    >>> itk_trouble(o)
    'Uncompress failed'
    """
    for line in out.lines():
        low = line.lower()
        if any(w in low for w in _TROUBLE):
            return " ".join(line.split())[:200]
    return None


class LibraryMessages:
    """The warnings and log records (WARNING and above) a Python library emitted in a block."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.messages)


class _Collect(logging.Handler):
    def __init__(self, into: LibraryMessages) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.messages.append(record.getMessage().splitlines()[0] if record.getMessage() else record.levelname)


@contextlib.contextmanager
def library_messages(*loggers: str) -> Iterator[LibraryMessages]:
    """Collect what Python libraries report during the block, instead of letting them print it.

    A reader's warning ("non-conformant padding", "invalid number of segments") is a report of
    trouble: the caller decides whether it means the data are damaged. The records of the
    named loggers (WARNING and above) and every Python warning raised in the block are
    collected, kept from the user's console (a library's traceback is not medseg's message)
    and logged at DEBUG level (``--debug`` shows them).

    Parameters
    ----------
    *loggers : str
        Names of the libraries' loggers (e.g. ``"pydicom"``).

    Yields
    ------
    LibraryMessages
        Its ``messages`` (first line of each) are filled as they come.

    Examples
    --------
    >>> with library_messages("somelib") as msgs:
    ...     logging.getLogger("somelib").warning("data not read completely")
    ...     warnings.warn("odd padding")
    >>> msgs.messages
    ['data not read completely', 'odd padding']
    """
    msgs = LibraryMessages()
    handler = _Collect(msgs)
    saved = []
    for name in loggers:
        lg = logging.getLogger(name)
        saved.append((lg, lg.propagate, lg.level))
        lg.addHandler(handler)
        lg.propagate = False
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield msgs
        msgs.messages += [str(w.message).splitlines()[0] if str(w.message) else w.category.__name__ for w in caught]
    finally:
        for lg, propagate, level in saved:
            lg.removeHandler(handler)
            lg.propagate = propagate
            lg.setLevel(level)
        for m in msgs.messages:
            log.debug("library message: %s", m)
