"""Running the web application: the token, the port check and uvicorn until Ctrl-C.

Examples
--------
>>> len(make_token())
32
"""
from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Callable
from typing import Any

from medseg.errors import InputError, require

__all__ = ["make_token", "check_port", "serve"]


def make_token() -> str:
    """A new random access token (32 hex characters), like Jupyter's.

    Returns
    -------
    str
    """
    return secrets.token_hex(16)


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken (or an address this machine does not have) with one clear line.

    Parameters
    ----------
    host : str
    port : int

    Raises
    ------
    InputError
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port") from None


def serve(app: Any, host: str, port: int, *, on_started: Callable[[], None] | None = None) -> None:
    """Serve ``app`` with uvicorn until interrupted; on exit running jobs are cancelled.

    Parameters
    ----------
    app : fastapi.FastAPI
        From [`medseg.web.create_app`][].
    host : str
    port : int
    on_started : callable, optional
        Called once the server listens (e.g. to open a browser).
    """
    uvicorn = require("uvicorn", extra="web", purpose="medseg serve")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    if on_started is not None:
        original = server.startup

        async def startup(*args: Any, **kwargs: Any) -> None:
            await original(*args, **kwargs)
            if server.started:
                on_started()

        server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shut down gracefully, then re-raised the signal: a normal stop
        pass
    finally:
        app.state.jobs.shutdown()
