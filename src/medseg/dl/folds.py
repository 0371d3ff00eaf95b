"""Cross-validation fold selection (``--fold`` when training, ``--use-folds`` when predicting).

Examples
--------
>>> parse_folds("all", 3)
[0, 1, 2]
>>> parse_folds("0,2", 5)
[0, 2]
"""
from __future__ import annotations

from medseg.errors import ConfigError

__all__ = ["parse_folds"]


def parse_folds(fold: str, n_folds: int, flag: str = "--fold") -> list[int]:
    """Fold numbers from ``"all"`` or a comma-separated list such as ``"0,2"``.

    Parameters
    ----------
    fold : str
        ``"all"`` or fold numbers.
    n_folds : int
        Folds of the cross-validation; valid numbers are ``0 .. n_folds - 1``.
    flag : str
        The option's name, for error messages.

    Returns
    -------
    list of int

    Raises
    ------
    ConfigError
        Not numbers, none given, or a number out of range.
    """
    text = str(fold).strip().lower()
    if text == "all":
        return list(range(n_folds))
    try:
        ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be fold numbers (e.g. 0 or 0,2) or 'all', got '{fold}'") from None
    bad = [k for k in ks if not 0 <= k < n_folds]
    if bad or not ks:
        raise ConfigError(f"{flag} {fold}: folds are numbered 0..{n_folds - 1} (--folds {n_folds})")
    return ks
