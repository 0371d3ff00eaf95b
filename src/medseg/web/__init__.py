"""``medseg serve``: a web front end to browse, segment, annotate, train and evaluate.

`create_app` builds the FastAPI application (the HTTP API of [`medseg.web.app`][]
and the built page in ``static/``); `serve` runs it with uvicorn until interrupted.
The front end's sources are in the repository's ``web/`` folder (``web/build.sh`` bundles
them, with niivue, into ``static/``), so users never need node.
"""
from medseg.web.app import create_app
from medseg.web.server import check_port, make_token, serve

__all__ = ["create_app", "serve", "make_token", "check_port"]
