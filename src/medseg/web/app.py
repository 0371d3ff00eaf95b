"""The ``medseg serve`` web application (FastAPI): the HTTP API and the page.

API (JSON; every error is ``{"error": "..."}`` with a 4xx status, never a traceback):

- ``GET /api/cases`` -> ``[{"id", "root", "shape", "spacing", "labelled", "modified", ...}]``
- ``GET /api/cases/{id}/image``, ``GET /api/cases/{id}/label`` -> ``.nii.gz`` bytes with an ETag
- ``PUT /api/cases/{id}/label`` (NIfTI body, ``If-Match``) -> ``{"etag"}``; 409 stale, 400 bad grid/data
- ``GET /api/cases/{id}/prediction`` -> the case's latest prediction (``.nii.gz``)
- ``GET /api/cases/{id}/metrics`` -> the prediction against the label (dice, hd95)
- ``POST /api/cases/{id}/scribbles`` (NIfTI scribble map, 0 = unlabelled, k = label k-1) -> prediction bytes
- ``GET /api/methods`` -> the method registry (name, family, parameters)
- ``GET /api/models`` -> served models and trained versions
- ``POST /api/jobs`` ``{"kind": "segment"|"train", "case", "method"|"model", "params"}`` -> ``{"id"}``
- ``GET /api/jobs/{id}`` -> ``{"state", "progress", "message", "result"}``; ``DELETE`` cancels
- ``GET /api/info`` -> the served roots (layout, label names) and the server's limits

Security (`Guard`): only Host names the server answers to (DNS rebinding) and
same-origin requests (CSRF) are let in; with a token every request needs it (header
``Authorization: Bearer``/``X-Medseg-Token``, a ``?token=`` on the first page load, then a
cookie); request bodies are capped. Files are reached only through case ids (`.store`).

Examples
--------
>>> import tempfile
>>> from fastapi.testclient import TestClient
>>> from medseg.testing import make_dataset
>>> app = create_app([make_dataset(Path(tempfile.mkdtemp()) / "d", n=2, shape=(16, 16))])
>>> with TestClient(app, base_url="http://127.0.0.1:8765") as client:
...     [c["id"] for c in client.get("/api/cases").json()]
['case_000', 'case_001']
"""

import datetime as _dt
import gzip
import hmac
import ipaddress
import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from medseg.contract import read_model_info
from medseg.errors import ConfigError, InputError, MedsegError, ModelError, require
from medseg.image import Image
from medseg.io.atomic import atomic_write_text
from medseg.web.errors import Forbidden, NotFound, status_of
from medseg.web.jobs import Job, Jobs
from medseg.web.nifti_bytes import decode_label, encode
from medseg.web.store import Store, inside

__all__ = ["create_app", "Guard", "Models", "is_loopback", "STATIC"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
"""The built front end (index.html, app.js, app.css), shipped as package data."""
NIFTI = "application/octet-stream"
COOKIE = "medseg_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
#: parameter values that name files are refused over HTTP (they could reach outside the roots)
_PATHLIKE = re.compile(r"[/\\]|^\.\.?$|^~")


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback name or address.

    Parameters
    ----------
    host : str

    Returns
    -------
    bool

    Examples
    --------
    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    h = host.strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The host of a Host header or an Origin's netloc, without the port."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The server's access rules: allowed Host names, same origin, the token, the body limit.

    Parameters
    ----------
    host : str
        The address the server binds; a non-loopback one needs a token.
    token : str or None
        The access token (None: no token, loopback only).
    allowed_hosts : sequence of str, optional
        Host names accepted besides the loopback names and ``host`` (``*``: any).
    max_body : int
        Largest request body in bytes.

    Raises
    ------
    ConfigError
        A non-loopback host without a token.
    """

    def __init__(self, host: str = "127.0.0.1", token: str | None = None, *,
                 allowed_hosts: Sequence[str] = (), max_body: int = 512 * 2 ** 20) -> None:
        if not is_loopback(host) and not token:
            raise ConfigError(f"serving on {host} (not loopback) needs a token (--token)")
        self.host, self.token, self.max_body = host, token or None, int(max_body)
        names = {*LOOPBACK_NAMES, *(h.lower() for h in allowed_hosts)}
        if not is_loopback(host) and host not in ("0.0.0.0", "::"):
            names.add(host.lower())
        self.any_host = "*" in names or host in ("0.0.0.0", "::")
        self.hosts = names

    def host_ok(self, host_header: str | None) -> bool:
        """True when the request's Host names this server (refuses DNS-rebinding names)."""
        if not host_header:
            return False
        return self.any_host or _host_name(host_header) in self.hosts

    def origin_ok(self, origin: str | None, host_header: str | None, fetch_site: str | None) -> bool:
        """True for a same-origin (or non-browser) request: the Origin's host and port are the Host's."""
        if fetch_site and fetch_site.lower() == "cross-site":
            return False
        if not origin:
            return True
        if origin == "null":
            return False
        netloc = urlsplit(origin).netloc.lower()
        return bool(host_header) and netloc == (host_header or "").strip().lower()

    def token_ok(self, candidate: str | None) -> bool:
        """True when no token is needed or ``candidate`` is it (constant-time comparison)."""
        if self.token is None:
            return True
        return bool(candidate) and hmac.compare_digest(str(candidate).encode(), self.token.encode())


class Models:
    """The models the server can run: those given with ``--model`` and the versions trained here.

    Trained versions are written to ``ROOT/models/<method>/vNNN/`` (a new folder each time;
    a model folder is never changed in place).

    Parameters
    ----------
    served : sequence of str or Path
        Model folders (``--model``).
    roots : sequence of Path
        The served roots (where trained versions are looked for).
    """

    def __init__(self, served: Sequence[str | Path], roots: Sequence[Path]) -> None:
        self.served = [Path(m) for m in served]
        for m in self.served:
            read_model_info(m)  # refuse a bad folder at start
        self.roots = list(roots)
        self._lock = threading.Lock()

    def listing(self) -> list[dict[str, Any]]:
        """Every model: ``id``, ``name``, ``method``, ``version``, ``source``, ``created``.

        Returns
        -------
        list of dict
        """
        out = []
        for i, m in enumerate(self.served):
            out.append(self._describe(f"m{i}", m.name, m, 0, "served"))
        for r, root in enumerate(self.roots):
            base = root / "models"
            if not base.is_dir():
                continue
            for d in sorted(base.iterdir()):
                if not d.is_dir() or d.name.startswith("."):
                    continue
                for v in sorted(d.iterdir()):
                    if re.fullmatch(r"v\d{3,}", v.name) and (v / "model.json").is_file() and inside(v, root):
                        out.append(self._describe(f"r{r}-{d.name}-{v.name}", d.name, v, int(v.name[1:]), "trained"))
        return out

    @staticmethod
    def _describe(mid: str, name: str, path: Path, version: int, source: str) -> dict[str, Any]:
        try:
            info = read_model_info(path)
        except ModelError as exc:
            return {"id": mid, "name": name, "version": version, "source": source, "error": str(exc)}
        created = _dt.datetime.fromtimestamp((path / "model.json").stat().st_mtime).isoformat(timespec="seconds")
        return {"id": mid, "name": name, "method": info.get("method"), "version": version, "source": source,
                "created": created, "trained_on": _trained_on(path)}

    def path(self, model_id: str) -> Path:
        """The folder of the model ``model_id`` (an id from `listing`, never a path).

        Raises
        ------
        NotFound
        """
        if re.fullmatch(r"m\d+", model_id) and int(model_id[1:]) < len(self.served):
            return self.served[int(model_id[1:])]
        m = re.fullmatch(r"r(\d+)-([\w.-]+)-(v\d{3,})", model_id)
        if m and int(m[1]) < len(self.roots):
            root = self.roots[int(m[1])]
            p = root / "models" / m[2] / m[3]
            if ".." not in m[2] and (p / "model.json").is_file() and inside(p, root):
                return p
        raise NotFound(f"no model '{model_id}' (GET /api/models lists them)")

    def save_new(self, root_index: int, name: str, model: Any, trained_on: Sequence[str]) -> str:
        """Save ``model`` as a new version ``ROOT/models/<name>/vNNN/`` (never over an existing one).

        Parameters
        ----------
        root_index : int
            The root whose ``models/`` folder receives it.
        name : str
            The model's name (its method).
        model : Trainable
            A fitted model (its ``save`` writes the folder atomically).
        trained_on : sequence of str
            The case ids it learnt from (kept in ``web.json`` beside ``model.json``).

        Returns
        -------
        str
            The new version's id.
        """
        root = self.roots[root_index]
        base = root / "models" / name
        with self._lock:
            nums = [int(v.name[1:]) for v in base.iterdir() if re.fullmatch(r"v\d{3,}", v.name)] \
                if base.is_dir() else []
            n = max(nums, default=0) + 1
            path = base / f"v{n:03d}"
            model.save(path)
            atomic_write_text(path / "web.json", json.dumps({"trained_on": list(trained_on)}, indent=1))
        return f"r{root_index}-{name}-v{n:03d}"


def _trained_on(path: Path) -> list[str] | None:
    try:
        return list(json.loads((path / "web.json").read_text())["trained_on"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tokens(params: Any) -> list[str]:
    """A method's parameters from JSON as ``--name=value`` tokens; file-naming values are refused."""
    if params is None:
        return []
    if not isinstance(params, dict):
        raise InputError("params must be a JSON object of parameter names to values")
    out = []
    for k, v in params.items():
        if not re.fullmatch(r"[A-Za-z_][\w-]*", str(k)):
            raise InputError(f"bad parameter name {k!r}")
        if isinstance(v, (dict, list)):
            v = ",".join(str(x) for x in v) if isinstance(v, list) else json.dumps(v)
        if isinstance(v, bool):
            v = "true" if v else "false"
        if v is None:
            continue
        if isinstance(v, str) and _PATHLIKE.search(v):
            raise Forbidden(f"parameter '{k}': values that name files are not accepted over HTTP")
        out.append(f"--{str(k).replace('_', '-')}={v}")
    return out


class _Predictions:
    """The latest prediction of each case (in memory) and its metrics."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[Image, str, float]] = {}
        self._metrics: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def set(self, case_id: str, label: Image, source: str) -> None:
        with self._lock:
            self._items[case_id] = (label, source, time.time())
            self._metrics.pop(case_id, None)

    def get(self, case_id: str) -> tuple[Image, str, float] | None:
        return self._items.get(case_id)

    def metrics(self, store: Store, case_id: str) -> dict[str, Any] | None:
        hit = self._items.get(case_id)
        if hit is None:
            return None
        e = store.get(case_id)
        tag = store.label_etag(e)
        cached = self._metrics.get(case_id)
        if cached and cached[0] == tag + hit[1] + str(hit[2]):
            return cached[1]
        truth = store.label(case_id)
        if truth is None:
            return None
        from medseg.metrics import dice, hd95  # deferred: metrics pulls scipy's distance code; only on request

        pred = hit[0]
        m = {"dice": float(dice(pred.array, truth.array)),
             "hd95": float(hd95(pred.array, truth.array, spacing=truth.spacing)), "source": hit[1]}
        m = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in m.items()}
        self._metrics[case_id] = (tag + hit[1] + str(hit[2]), m)
        return m


def create_app(roots: Sequence[str | Path], *, models: Sequence[str | Path] = (), host: str = "127.0.0.1",
               token: str | None = None, allowed_hosts: Sequence[str] = (), max_body: int = 512 * 2 ** 20,
               workers: int = 2) -> Any:
    """The FastAPI application serving ``roots``.

    Parameters
    ----------
    roots : sequence of str or Path
        Dataset folders (any layout medseg reads) or plain folders of images.
    models : sequence of str or Path
        Model folders (``medseg train`` outputs) to offer.
    host : str
        The address the server will bind (a non-loopback one needs ``token``).
    token : str, optional
        Access token every request must carry.
    allowed_hosts : sequence of str
        Extra Host names to answer to.
    max_body : int
        Largest request body, in bytes.
    workers : int
        Background jobs running at once.

    Returns
    -------
    fastapi.FastAPI
        With ``app.state.store``, ``app.state.jobs``, ``app.state.guard``.

    Raises
    ------
    DependencyError
        FastAPI is not installed (``pip install 'medseg[web]'``).
    InputError, ConfigError, ModelError
        A root or model that cannot be served, or a non-loopback host without a token.
    """
    fastapi = require("fastapi", extra="web", purpose="medseg serve")
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, RedirectResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException

    guard = Guard(host, token, allowed_hosts=allowed_hosts, max_body=max_body)
    store = Store(roots)
    model_reg = Models(models, [r.path for r in store.roots])
    jobs = Jobs(workers)
    preds = _Predictions()

    @asynccontextmanager
    async def lifespan(app):  # noqa: ANN001, ANN202 - FastAPI's signature
        yield
        jobs.shutdown()

    app = fastapi.FastAPI(title="medseg", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.store, app.state.jobs, app.state.guard, app.state.models = store, jobs, guard, model_reg

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(MedsegError)
    async def _medseg_error(request: Request, exc: MedsegError) -> JSONResponse:
        return error(status_of(exc), str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail) if exc.detail else "error")

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        return error(400, f"bad request: {first.get('msg', 'invalid input')} at {list(first.get('loc', []))}")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error(500, f"internal error: {type(exc).__name__}")

    @app.middleware("http")
    async def _guard(request: Request, call_next):  # noqa: ANN001, ANN202 - FastAPI's signature
        h = request.headers
        if not guard.host_ok(h.get("host")):
            return error(403, "this server does not answer to that Host name (DNS rebinding protection)")
        if not guard.origin_ok(h.get("origin"), h.get("host"), h.get("sec-fetch-site")):
            return error(403, "cross-origin request refused")
        raw_path = request.scope.get("raw_path", b"").decode("latin-1")
        if ".." in raw_path or "%2e" in raw_path.lower() or "%2f" in raw_path.lower() or "%5c" in raw_path.lower():
            return error(404, "not found")
        query_token = request.query_params.get("token")
        auth = h.get("authorization", "")
        candidate = (auth[7:] if auth.lower().startswith("bearer ") else None) or h.get("x-medseg-token") \
            or request.cookies.get(COOKIE) or query_token
        if not guard.token_ok(candidate):
            if request.url.path.startswith("/api/"):
                return error(401, "a valid token is needed (open the URL medseg serve printed)")
            return Response("medseg serve: a valid token is needed: open the URL (with ?token=...) that "
                            "medseg serve printed.\n", status_code=401, media_type="text/plain")
        length = h.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > guard.max_body):
            return error(413, f"request body larger than the limit ({guard.max_body} bytes)")
        if guard.token and query_token and request.method == "GET" and not request.url.path.startswith("/api/"):
            resp = RedirectResponse(request.url.path, status_code=303)  # the token leaves the address bar
            resp.set_cookie(COOKIE, guard.token, httponly=True, samesite="strict")
            return resp
        return await call_next(request)

    async def body(request: Request) -> bytes:
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > guard.max_body:
                raise _TooLarge(guard.max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    @app.exception_handler(_TooLarge)
    async def _too_large(request: Request, exc: _TooLarge) -> JSONResponse:
        return error(413, str(exc))

    def nifti(data: bytes, etag: str | None = None, name: str = "image.nii.gz") -> Response:
        headers = {"Cache-Control": "no-store", "Content-Disposition": f'inline; filename="{name}"'}
        if etag:
            headers["ETag"] = etag
        return Response(data, media_type=NIFTI, headers=headers)

    # ------------------------------------------------------------------ page
    # the bundle ships gzipped (app.js.gz: a quarter of the size in the package); served as app.js
    files = {p.name.removesuffix(".gz"): p for p in STATIC.glob("*") if p.is_file()} if STATIC.is_dir() else {}
    types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8", ".map": "application/json", ".png": "image/png",
             ".svg": "image/svg+xml", ".wasm": "application/wasm", ".txt": "text/plain; charset=utf-8"}

    def static_file(name: str, accept_encoding: str = "") -> Response:
        p = files.get(name)
        if p is None:
            raise NotFound(f"no file '{name}'")
        headers = {"Cache-Control": "no-cache"}
        data = p.read_bytes()
        if p.name.endswith(".gz"):
            if "gzip" in accept_encoding.lower():
                headers["Content-Encoding"] = "gzip"
            else:
                data = gzip.decompress(data)
        return Response(data, media_type=types.get(Path(name).suffix, "application/octet-stream"), headers=headers)

    @app.get("/")
    def index() -> Response:
        if "index.html" not in files:
            return Response("medseg serve: the front end is not built (run web/build.sh)\n", media_type="text/plain")
        return static_file("index.html")

    @app.get("/static/{name}")
    def static(name: str, request: Request) -> Response:
        return static_file(name, request.headers.get("accept-encoding", ""))

    # ------------------------------------------------------------------ cases
    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return {"roots": [{"index": r.index, "name": r.path.name, "layout": r.layout,
                           "label_names": {str(k): v for k, v in sorted(r.label_names.items())}}
                          for r in store.roots],
                "max_body": guard.max_body, "token": guard.token is not None}

    @app.get("/api/cases")
    def cases() -> list[dict[str, Any]]:
        out = store.cases()
        for c in out:
            p = preds.get(c["id"])
            c["prediction"] = p is not None
            if p is not None and c["labelled"]:
                try:
                    c["metrics"] = preds.metrics(store, c["id"])
                except MedsegError:
                    c["metrics"] = None
        return out

    @app.get("/api/cases/{case_id}")
    def case(case_id: str) -> dict[str, Any]:
        return store.info(case_id)

    @app.get("/api/cases/{case_id}/image")
    def image(case_id: str) -> Response:
        data, tag = store.image_bytes(case_id)
        return nifti(data, tag, f"{case_id}.nii.gz")

    @app.get("/api/cases/{case_id}/label")
    def label(case_id: str) -> Response:
        data, tag = store.label_bytes(case_id)
        return nifti(data, tag, f"{case_id}_label.nii.gz")

    @app.put("/api/cases/{case_id}/label")
    async def save_label(case_id: str, request: Request) -> JSONResponse:
        store.get(case_id)
        data = await body(request)
        import anyio  # deferred: anyio comes with FastAPI (the web extra)

        tag = await anyio.to_thread.run_sync(store.save_label, case_id, data, request.headers.get("if-match"))
        return JSONResponse({"etag": tag, "case": case_id}, headers={"ETag": tag})

    @app.get("/api/cases/{case_id}/prediction")
    def prediction(case_id: str) -> Response:
        store.get(case_id)
        p = preds.get(case_id)
        if p is None:
            raise NotFound(f"case '{case_id}' has no prediction yet")
        return nifti(encode(p[0]), None, f"{case_id}_prediction.nii.gz")

    @app.get("/api/cases/{case_id}/metrics")
    def metrics(case_id: str) -> dict[str, Any]:
        e = store.get(case_id)
        if preds.get(case_id) is None:
            raise NotFound(f"case '{case_id}' has no prediction to evaluate")
        if not store.has_label(e):
            raise NotFound(f"case '{case_id}' has no label map to evaluate against")
        return preds.metrics(store, case_id) or {}

    @app.post("/api/cases/{case_id}/scribbles")
    async def scribbles(case_id: str, request: Request) -> Response:
        store.get(case_id)
        data = await body(request)
        import anyio  # deferred: anyio comes with FastAPI (the web extra)

        pred = await anyio.to_thread.run_sync(_scribble_predict, store, case_id, data)
        preds.set(case_id, pred, "scribbles")
        return nifti(encode(pred), None, f"{case_id}_prediction.nii.gz")

    # ------------------------------------------------------------------ methods, models, jobs
    @app.get("/api/methods")
    def methods() -> list[dict[str, Any]]:
        from medseg.methods.base import METHODS  # deferred: the registry imports every method family

        return [json.loads(json.dumps(METHODS.get(n).describe(), default=str)) for n in METHODS.names()]

    @app.get("/api/models")
    def models_() -> list[dict[str, Any]]:
        return model_reg.listing()

    @app.post("/api/jobs")
    async def submit(request: Request) -> JSONResponse:
        raw = await body(request)
        try:
            spec = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("the body must be a JSON object") from None
        if not isinstance(spec, dict):
            raise InputError("the body must be a JSON object")
        kind = spec.get("kind")
        if kind == "segment":
            job = _submit_segment(spec, store, model_reg, jobs, preds)
        elif kind == "train":
            job = _submit_train(spec, store, model_reg, jobs)
        else:
            raise InputError(f"kind must be 'segment' or 'train', got {kind!r}")
        return JSONResponse({"id": job.id, **job.as_dict()}, status_code=202)

    @app.get("/api/jobs")
    def list_jobs() -> list[dict[str, Any]]:
        return [j.as_dict() for j in jobs.list()]

    @app.get("/api/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).as_dict()

    @app.delete("/api/jobs/{job_id}")
    def cancel_job(job_id: str) -> dict[str, Any]:
        return jobs.cancel(job_id).as_dict()

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(rest: str) -> JSONResponse:
        return error(404, f"no such API endpoint: /api/{rest}")

    return app


class _TooLarge(InputError):
    """A request body over the limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than the limit ({limit} bytes)")


def _scribble_predict(store: Store, case_id: str, data: bytes) -> Image:
    """Fit the interactive random forest on the scribbles; the prediction as label values."""
    from medseg.ml import fit_predict_scribbles  # deferred: scikit-learn is imported only when scribbles are used

    img = store.image(case_id)
    scr = decode_label(data, img, what="scribble map")
    if not scr.any():
        raise InputError("the scribble map is empty: draw at least two labels")
    if len(np.unique(scr[scr > 0])) < 2:
        raise InputError("scribble at least two different labels (e.g. background and one structure)")
    labels, _, _ = fit_predict_scribbles(img, scr, method="random-forest", n_jobs=4)
    out = np.clip(labels.array.astype(np.int32) - 1, 0, None).astype(np.uint8)
    return Image(out, img.spacing, img.origin, img.direction, meta={k: v for k, v in img.meta.items()
                                                                     if k.startswith("nifti")})


def _submit_segment(spec: dict, store: Store, models: Models, jobs: Jobs, preds: _Predictions) -> Job:
    from medseg.resolve import resolve_segmenter  # deferred: resolving imports every method family

    case_id = spec.get("case")
    if not isinstance(case_id, str):
        raise InputError("a segment job needs \"case\": the id of a case")
    store.get(case_id)
    method, model, recipe = spec.get("method"), spec.get("model"), spec.get("recipe")
    if sum(x is not None for x in (method, model, recipe)) != 1:
        raise InputError("a segment job needs one of \"method\", \"recipe\" or \"model\"")
    if recipe is not None and (not isinstance(recipe, str) or _PATHLIKE.search(recipe) or recipe.endswith(".json")):
        raise Forbidden("recipes are named, never given as files, over HTTP")
    tokens = _tokens(spec.get("params"))
    model_dir = models.path(str(model)) if model is not None else None
    # check the method and parameters now: a bad name or value is a 400, not a failed job
    seg = resolve_segmenter(method=method, recipe=recipe, model=model_dir, tokens=tokens)
    source = f"model {model}" if model else f"recipe {recipe}" if recipe else f"method {method}"

    def run(job: Job) -> dict[str, Any]:
        job.report(0.05, f"loading case {case_id}")
        img = store.image(case_id)
        job.report(0.2, f"segmenting with {source}")
        lab = seg(img)
        job.report(0.95, "storing the prediction")
        arr = np.asarray(lab.array)
        out = Image(arr.astype(np.uint16 if arr.max(initial=0) > 255 else np.uint8), img.spacing, img.origin,
                    img.direction, meta={k: v for k, v in img.meta.items() if k.startswith("nifti")})
        preds.set(case_id, out, source)
        return {"case": case_id, "prediction": f"/api/cases/{case_id}/prediction", "source": source,
                "message": f"{source}: done"}

    return jobs.submit("segment", run)


def _submit_train(spec: dict, store: Store, models: Models, jobs: Jobs) -> Job:
    from medseg.methods.base import get_method  # deferred: the registry imports every method family

    method = spec.get("method") or "random-forest"
    cls = get_method(str(method))
    if not cls.trainable or cls.family != "ml":
        raise InputError(f"training in the browser supports the ML pixel classifiers (e.g. random-forest), "
                         f"not '{method}'")
    if spec.get("model") is not None:
        raise InputError("fine-tuning a served model is not supported here; train a new ML model version")
    tokens = _tokens(spec.get("params"))
    from medseg.config.tokens import params_from_tokens  # deferred: with the method registry above

    params, _ = params_from_tokens(cls.Params, tokens, what=f"method '{method}'")
    case_id = spec.get("case")
    root_index = store.get(case_id).root.index if isinstance(case_id, str) else 0
    entries = [e for e in store.entries.values() if e.root.index == root_index and store.has_label(e)]
    if not entries:
        raise InputError("no saved label maps to train on in this dataset: save some labels first")

    def run(job: Job) -> dict[str, Any]:
        images, labels = [], []
        for i, e in enumerate(entries):
            job.report(0.3 * i / len(entries), f"loading {e.id}")
            lab = store.label(e.id)
            if lab is not None:
                images.append(store.image(e.id))
                labels.append(lab.array)
        job.report(0.3, f"training {method} on {len(images)} case(s)")
        model = cls(params)
        model.fit(images, labels)
        job.report(0.9, "saving the model")
        mid = models.save_new(root_index, str(method), model, [e.id for e in entries])
        return {"model": mid, "message": f"trained {mid} on {len(images)} case(s)"}

    return jobs.submit("train", run)
