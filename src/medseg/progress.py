"""Progress for long work, the one place that decides how it is shown.

On a terminal a progress bar (tqdm) is drawn on stderr. Anywhere else (a pipeline, a CI log,
a cluster job) a bar's frames would fill the log, so plain ``desc: 12/40`` lines are logged
instead, at most one every `LOG_EVERY_S` seconds and one at the end (none for work
shorter than that). Neither appears
when the ``medseg`` logger is quieter than INFO (``medseg -q``), and a bar is erased, never
left half-drawn, when the work stops with an error.

Examples
--------
>>> total = 0
>>> for i in progress(range(3), desc="demo", enabled=False):
...     total += i
>>> total
3
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["Progress", "progress", "LOG_EVERY_S", "on_terminal"]

T = TypeVar("T")

log = logging.getLogger("medseg.progress")

LOG_EVERY_S = 30.0
"""Off a terminal, the least number of seconds between two progress lines."""


def on_terminal() -> bool:
    """True when stderr is an interactive terminal (where progress bars belong)."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _wanted() -> bool:
    return logging.getLogger("medseg").isEnabledFor(logging.INFO)


class Progress:
    """A progress display: a bar on a terminal, occasional log lines elsewhere, nothing when off.

    Parameters
    ----------
    total : float, optional
        The amount of work (steps, cases, seconds).
    desc : str
        What is progressing.
    unit : str
        The unit of ``total``.
    initial : float
        Work already done (a resumed run).
    enabled : bool
        False shows nothing (e.g. fewer items than worth a display).
    """

    def __init__(self, total: float | None = None, *, desc: str = "", unit: str = "it", initial: float = 0,
                 enabled: bool = True) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self._bar: Any = None
        self._postfix = ""
        self._logging = False
        self._lines = 0
        self._last = time.monotonic()
        if not enabled or not _wanted():
            return
        if on_terminal():
            from tqdm.auto import tqdm  # deferred: tqdm takes ~80 ms to import

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=True)
        else:
            self._logging = True

    def update(self, n: float = 1) -> None:
        """Record ``n`` more units of work."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._logging and time.monotonic() - self._last >= LOG_EVERY_S:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        """Figures shown beside the count (the bar's postfix; the next log line's tail)."""
        self._postfix = ", ".join(f"{k} {v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def _line(self) -> None:
        self._last = time.monotonic()
        self._lines += 1
        of = f"/{self.total:g}" if self.total else ""
        tail = self._postfix
        log.info("%s: %g%s %s%s", self.desc or "progress", self.n, of, self.unit, f" ({tail})" if tail else "")

    def close(self, *, failed: bool = False) -> None:
        """End the display: a bar is kept when the work finished, erased when it ``failed``."""
        if self._bar is not None:
            if failed:
                self._bar.leave = False
            self._bar.close()
            self._bar = None
        elif self._logging and not failed:
            if self._lines:  # short work printed nothing: no closing line either
                self._line()
            self._logging = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool = True) -> Iterator[T]:
    """Iterate over ``items`` while showing progress (see `Progress`).

    Parameters
    ----------
    items : iterable
    total : int, optional
        The number of items (default ``len(items)`` when it has one).
    desc, unit : str
        What is progressing, and its unit.
    enabled : bool
        False shows nothing.

    Yields
    ------
    The items of ``items``.
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc=desc, unit=unit, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update(1)
