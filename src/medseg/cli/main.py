"""Entry point of the ``medseg`` command.

Each subcommand lives in ``medseg.cli.cmd_<name>`` and provides ``HELP``,
``add_arguments(parser)`` and ``run(args, extra) -> int``; a module may set
``ACCEPTS_EXTRA = True`` to receive method-specific ``--param value`` tokens.

Exit codes: 0 success, 2 user error (one line on stderr), 1 internal error,
130 interrupted.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from medseg._version import __version__
from medseg.config import join_option_values
from medseg.errors import MedsegError, suggest

COMMANDS = ("inspect", "convert", "anonymize", "methods", "segment", "preprocess", "train", "predict", "evaluate",
            "compare", "explain", "export", "demo", "serve")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2 (an unknown command gets the
    nearest one), and with no abbreviations: a method's ``--mode`` must never be taken for the
    command's ``--model``."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - argparse's signature
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, exit 2, like every other user error
        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:  # an unknown subcommand: the nearest one
            choices = re.findall(r"'?([\w-]+)'?", m.group(2))
            message = f"unknown command '{m.group(1)}'{suggest(m.group(1), choices)}; commands: {', '.join(choices)}"
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> tuple[argparse.ArgumentParser, dict]:
    """The ``medseg`` parser with every subcommand, and the subcommand modules by name.

    Returns
    -------
    (argparse.ArgumentParser, dict of str to module)
    """
    parser = _Parser(prog="medseg", description="Medical image segmentation: data, methods, training, evaluation.")
    parser.add_argument("--version", action="version", version=f"medseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", "-q", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    modules = {}
    for name in COMMANDS:
        mod = importlib.import_module(f"medseg.cli.cmd_{name}")
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        # the global flags are accepted after the subcommand too (`medseg segment ... -q`)
        p.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        modules[name] = mod
    return parser, modules


def parse(parser: argparse.ArgumentParser, modules: dict, argv: Sequence[str]
          ) -> tuple[argparse.Namespace, list[str]]:
    """Parse a command line: the command's arguments and the method options left over.

    A method option's value must not be taken for an optional positional argument
    (``train --images DIR --time-budget 20``): once the first pass knows the method, each
    value is joined to its option ([`medseg.config.join_option_values`][]) and the line is
    parsed again.

    Parameters
    ----------
    parser, modules
        From `build_parser`.
    argv : sequence of str
        The arguments after ``medseg``.

    Returns
    -------
    (argparse.Namespace, list of str)
        The parsed arguments and the unknown (method option) tokens.
    """
    argv = list(argv)
    args, extra = parser.parse_known_args(argv)
    mod = modules.get(getattr(args, "command", None) or "")
    if extra and hasattr(mod, "option_classes"):
        joined = join_option_values(argv, mod.option_classes(args))
        if joined != argv:
            args, extra = parser.parse_known_args(joined)
    return args, extra


#: libraries whose own log records and warnings a user never needs: medseg says what went wrong
#: in one line; ``--debug`` shows theirs
IO_LIBRARIES = ("tifffile", "pydicom", "nibabel", "PIL", "imagecodecs", "SimpleITK")
CHATTY = ("matplotlib", "urllib3", "h5py", "numexpr", "numba", "torch", "monai")


def quiet_libraries(*, debug: bool) -> None:
    """Route the libraries' logging and warnings: silent on the command line, shown with ``--debug``.

    Parameters
    ----------
    debug : bool
        Show the I/O libraries' warnings and errors (and keep Python warnings).
    """
    for name in IO_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING if debug else logging.CRITICAL + 1)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not debug:
        for name in IO_LIBRARIES:
            warnings.filterwarnings("ignore", module=name)


class _LibraryFilter(logging.Filter):
    """Keeps the I/O libraries' records off the console: a library may reset its logger's level
    when it is imported (pydicom does), after `quiet_libraries` ran."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] not in IO_LIBRARIES


class _CliFormatter(logging.Formatter):
    """Progress and results as plain lines; warnings marked as such, as errors are."""

    def format(self, record: logging.LogRecord) -> str:
        msg = super().format(record)
        return f"medseg: warning: {msg}" if record.levelno >= logging.WARNING else msg


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``medseg`` with ``argv`` (default: the process arguments); return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional

    Returns
    -------
    int
        0 success, 2 user error (one line on stderr), 1 internal error, 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser, modules = build_parser()
        try:
            args, extra = parse(parser, modules, argv)
        except SystemExit as exc:  # --help, --version, usage errors
            if argv and argv[0] in ("--version", "-h", "--help"):
                raise
            return int(exc.code or 0)
        level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s") if args.debug
                             else _CliFormatter())
        if not args.debug:
            handler.addFilter(_LibraryFilter())
        logging.basicConfig(level=level, handlers=[handler])
        quiet_libraries(debug=args.debug)
        if not args.command:
            parser.print_help()
            return 2
        mod = modules[args.command]
        if extra and not getattr(mod, "ACCEPTS_EXTRA", False):
            print(f"medseg {args.command}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
            return 2
        args.argv = argv  # for commands that relaunch themselves (train --nproc)
        return int(mod.run(args, extra) or 0)
    except MedsegError as exc:
        if debug:
            raise
        if getattr(exc, "replicated", False) and os.environ.get("RANK", "0") != "0":
            return 2  # a distributed run's error that rank 0 prints: one line, not one per rank
        print(f"medseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medseg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for users
        if debug:
            raise
        print(f"medseg: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback; "
              "please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
