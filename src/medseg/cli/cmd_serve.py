"""``medseg serve ROOT [ROOT ...]``: browse, segment, annotate, train and evaluate in a browser."""
from __future__ import annotations

import argparse
import threading
import webbrowser

HELP = "serve datasets in a web viewer: browse, segment, annotate, train, evaluate"
DESCRIPTION = """Serve one or more datasets (any layout medseg reads, or plain folders of images) in a web page:
a niivue viewer with label and prediction layers, the case list with metrics, any method, recipe or
model run as a background job, brush/eraser/scribble annotation saved in the dataset's own format
(the previous version kept in labels_history/), and training new model versions from the saved labels.

The server binds 127.0.0.1 by default. Any other --host needs a token: one is generated and
printed when --token is not given. Stop it with Ctrl-C (running jobs are cancelled).

Example: medseg serve data/drive --model models/rf --open
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``medseg serve``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("roots", nargs="+", metavar="ROOT", help="dataset folder or folder of images")
    p.add_argument("--model", action="append", default=[], metavar="MODEL_DIR",
                   help="a model folder to offer (repeatable)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--token", help="access token (default: none on 127.0.0.1, generated on other hosts)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another Host name to answer to (e.g. the machine's DNS name)")
    p.add_argument("--max-body-mb", type=float, default=512.0, help="largest upload in MiB (default 512)")
    p.add_argument("--open", action="store_true", help="open the page in a browser")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Serve until Ctrl-C.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    extra : list of str
        Unused (this command takes no extra options).

    Returns
    -------
    int
        The exit code: 0 (user errors raise a ``MedsegError``).
    """
    from medseg.web import check_port, create_app, make_token, serve  # deferred: the optional web extra
    from medseg.web.app import is_loopback  # deferred: the optional web extra (FastAPI, uvicorn)

    token = args.token
    if token is None and not is_loopback(args.host):
        token = make_token()
    app = create_app(args.roots, models=args.model, host=args.host, token=token, allowed_hosts=args.allow_host,
                     max_body=int(args.max_body_mb * 2 ** 20))
    check_port(args.host, args.port)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    n = len(app.state.store.entries)
    print(f"medseg serve: {n} case(s) from {len(args.roots)} folder(s) at {url}", flush=True)
    print("press Ctrl-C to stop", flush=True)

    def opened() -> None:
        if args.open:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()

    serve(app, args.host, args.port, on_started=opened)
    print("medseg serve: stopped", flush=True)
    return 0
