"""The errors of ``medseg serve``'s HTTP API and their status codes.

Each is a [`MedsegError`][medseg.errors.MedsegError] (a problem a user or client causes); the app
answers it as ``{"error": message}`` with `status_of`.

Examples
--------
>>> status_of(NotFound("no case 'x'"))
404
>>> from medseg.errors import GeometryError
>>> status_of(GeometryError("wrong grid"))
400
"""
from __future__ import annotations

from medseg.errors import DependencyError, InputError, MedsegError, ModelError

__all__ = ["NotFound", "Conflict", "Forbidden", "PreconditionRequired", "status_of"]


class NotFound(InputError):
    """An unknown case, job, model or file (404)."""


class Conflict(InputError):
    """A save whose file changed on disk since it was loaded (409)."""


class Forbidden(InputError):
    """A path outside the served roots, or a parameter that names a file (403)."""


class PreconditionRequired(InputError):
    """A save without ``If-Match`` (428)."""


def status_of(exc: MedsegError) -> int:
    """The HTTP status answering ``exc``.

    Parameters
    ----------
    exc : MedsegError

    Returns
    -------
    int
    """
    for cls, code in ((NotFound, 404), (Conflict, 409), (Forbidden, 403), (PreconditionRequired, 428),
                      (DependencyError, 501), (ModelError, 400)):
        if isinstance(exc, cls):
            return code
    return 400
