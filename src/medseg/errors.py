"""Errors medseg raises for problems the user can fix.

Every error a user can cause (bad file, bad parameter, missing dependency) is a
`MedsegError`. The CLI prints its message as one line on stderr and exits with
code 2; anything else is an internal error (exit code 1).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class MedsegError(Exception):
    """Base class of every error caused by the user's input or environment."""


class InputError(MedsegError):
    """A file, folder or array cannot be used (missing, corrupt, wrong shape or dtype)."""


class FormatError(InputError):
    """A file is not in a format medseg can read, or is truncated/corrupt."""


class GeometryError(InputError):
    """Images that must share a grid (image/label, prediction/ground truth) do not."""


class OutputExistsError(InputError):
    """An output a command would write exists already and replacing it was not asked for (``--force``)."""


class ConfigError(MedsegError):
    """An unknown or invalid parameter, method, option or configuration value."""


class DependencyError(MedsegError):
    """An optional dependency needed for this operation is not installed."""


class ModelError(MedsegError):
    """A saved model folder is missing, corrupt, tampered with or incompatible."""


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def require(module: str, *, extra: str | None = None, purpose: str = ""):
    """Import an optional dependency or raise `DependencyError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on environment
        hint = f"pip install 'medseg[{extra}]'" if extra else f"pip install {module.split('.')[0]}"
        what = f" for {purpose}" if purpose else ""
        raise DependencyError(f"the optional package '{module}' is needed{what}: {hint}") from exc
