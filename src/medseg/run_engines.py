"""Engines for folder runs of ``medseg segment`` and ``medseg predict``: local, or sharded over Ray.

[`medseg.run.apply_paths`][] hands the cases of a folder to an engine:

* ``local`` ([`LocalEngine`][medseg.run.LocalEngine], the default): one case after the other in
  this process.
* ``ray`` (`RayEngine`, ``--engine ray [--address ADDRESS] [--workers N]``): N Ray
  actors (default: the CPUs Ray sees, at most the number of cases). Each actor gets the
  segmenter's *recipe* — a picklable zero-argument factory such as
  ``functools.partial(resolve_segmenter, method="otsu", tokens=(...))`` — builds the
  segmenter once and is handed the next case whenever it finishes one (a slow case does not
  stall the others). Each actor reserves ``CPUs // N`` CPUs and runs that many torch threads,
  so N actors do not oversubscribe the cores. Each actor reads its inputs and writes its
  outputs itself, with the same code as the local engine ([`medseg.run.process_case`][],
  atomic writes), so a remote cluster needs the input and output folders on a shared file
  system. Without ``--address`` a local Ray instance starts with the command and stops
  with it (also on an error or Ctrl-C); with it the command joins that cluster and leaves
  it running. A process already connected to Ray (``ray.init`` called before) keeps its
  connection. Ray's own logging stays out of the terminal.

Ray is an optional extra (``pip install 'medseg[ray]'``), imported only when a Ray run starts.

Examples
--------
>>> make_engine("local").name
'local'
>>> make_engine("local", workers=2)
Traceback (most recent call last):
...
medseg.errors.ConfigError: --workers sets the number of Ray actors: it needs --engine ray
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from medseg.errors import ConfigError, DependencyError, InputError, require
from medseg.image import Image
from medseg.run import CaseResult, CaseTask, CaseWork, Engine, LocalEngine, process_case

log = logging.getLogger(__name__)

__all__ = ["ENGINES", "RayEngine", "make_engine", "run_options"]

ENGINES = ("local", "ray")
"""The engines ``--engine`` chooses from."""


class _CaseActor:
    """A Ray actor: builds the segmenter once, then processes the cases it is handed."""

    def __init__(self, factory: Callable[[], Any], work: CaseWork, threads: int) -> None:
        self.threads = max(1, int(threads))
        self.work = work
        self.error: Exception | None = None
        self.fn: Any = None
        try:
            self.fn = factory()
        except Exception as exc:  # noqa: BLE001 - reported with the first case, as the local engine would raise it
            self.error = exc

    def process(self, task: CaseTask) -> CaseResult:
        if self.error is not None:
            return CaseResult(task.index, error=self.error)
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        try:
            return process_case(self.fn, self.work, task)
        except Exception as exc:  # noqa: BLE001 - the driver re-raises it as the local engine would
            return CaseResult(task.index, error=exc)


class RayEngine:
    """Shard the cases of a run over Ray actors (see the module docstring).

    Parameters
    ----------
    factory : callable
        ``factory() -> segmenter``; picklable (a module-level function or a
        ``functools.partial`` of one): each actor calls it once.
    workers : int, optional
        The number of actors (default: the CPUs Ray sees); never more than the cases.
    address : str, optional
        A Ray cluster to join (``ray.init(address=...)``, e.g. ``"auto"`` or
        ``"ray://host:10001"``); without it a local instance starts and stops with the run.

    Raises
    ------
    ConfigError
        ``workers`` below 1.
    DependencyError
        Ray is not installed.
    """

    name = "ray"

    def __init__(self, factory: Callable[[], Any], *, workers: int | None = None, address: str | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        if importlib.util.find_spec("ray") is None:
            raise DependencyError("--engine ray needs Ray: pip install 'medseg[ray]'")
        self.factory = factory
        self.workers = workers
        self.address = address

    def run(self, fn: Callable[[Image], Image], work: CaseWork, tasks: Sequence[CaseTask]) -> Iterator[CaseResult]:
        """Process ``tasks`` on Ray actors; yield each result as it arrives.

        Parameters
        ----------
        fn : callable
            Unused: the actors build their own segmenter from the factory.
        work : CaseWork
        tasks : sequence of CaseTask

        Yields
        ------
        CaseResult
            In the order the cases finish.
        """
        if not tasks:
            return
        ray = require("ray", extra="ray", purpose="--engine ray")
        started = not ray.is_initialized()
        if started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.ERROR, "configure_logging": True}
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
                raise ConfigError(f"cannot start or join {where}: {str(exc).splitlines()[0]}") from None
        actors: list[Any] = []
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            node_cpus = max([float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
                            or [cpus])
            n = max(1, min(self.workers or int(cpus) or 1, len(tasks)))
            per = min(node_cpus, float(int(cpus // n))) if n <= cpus else int(cpus / n * 1e4) / 1e4
            per = per or 1e-4
            log.info("ray: %d worker(s) on %g CPU(s), %g CPU(s) each", n, cpus, per)
            remote = ray.remote(_CaseActor)

            def start() -> Any:
                return remote.options(num_cpus=per).remote(self.factory, work, max(1, int(per)))

            actors = [start() for _ in range(n)]
            queue = list(reversed(tasks))
            pending: dict[Any, tuple[Any, CaseTask]] = {}
            for actor in actors:
                if queue:
                    task = queue.pop()
                    pending[actor.process.remote(task)] = (actor, task)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                actor, task = pending.pop(ready[0])
                try:
                    result = ray.get(ready[0])
                except ray.exceptions.RayActorError as exc:  # the worker died (killed, out of memory)
                    result = CaseResult(task.index, error=InputError(
                        f"{task.src}: the Ray worker processing it died ({str(exc).splitlines()[0][:200]})"))
                    actors.remove(actor)
                    actor = start()
                    actors.append(actor)
                yield result
                if queue:
                    task = queue.pop()
                    pending[actor.process.remote(task)] = (actor, task)
        finally:
            for actor in actors:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001 - an actor already gone needs no killing
                    pass
            if started:
                ray.shutdown()


def make_engine(name: str = "local", *, factory: Callable[[], Any] | None = None, workers: int | None = None,
                address: str | None = None) -> Engine:
    """The engine ``--engine NAME [--workers N] [--address ADDRESS]`` asks for.

    Parameters
    ----------
    name : {"local", "ray"}
    factory : callable, optional
        The segmenter's recipe for the Ray actors (see `RayEngine`).
    workers : int, optional
        Ray actors.
    address : str, optional
        A Ray cluster to join.

    Returns
    -------
    Engine

    Raises
    ------
    ConfigError
        An unknown engine, ``--workers``/``--address`` with the local engine, ``--workers`` below 1.
    DependencyError
        ``ray`` without Ray installed.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine '{name}'; choose {' or '.join(ENGINES)}")
    if name == "local":
        if address is not None:
            raise ConfigError("--address joins a Ray cluster: it needs --engine ray")
        if workers is not None:
            raise ConfigError("--workers sets the number of Ray actors: it needs --engine ray")
        return LocalEngine()
    if factory is None:
        raise ConfigError("the ray engine needs the segmenter's recipe")
    return RayEngine(factory, workers=workers, address=address)


def _model_fingerprint(model: str | Path) -> str:
    """A model folder's files by name, size and modification time, hashed (a retrained model differs)."""
    root = Path(model)
    h = hashlib.sha256()
    if root.is_file():  # an exported NAME.onnx (with NAME.onnx.json beside it)
        files, root = [f for f in (root, root.with_name(root.name + ".json")) if f.is_file()], root.parent
    else:
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    for f in files:
        s = f.stat()
        h.update(f"{f.relative_to(root).as_posix()}:{s.st_size}:{s.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def run_options(command: str, options: Mapping[str, Any], tokens: Sequence[str] = (),
                model: str | Path | None = None) -> dict[str, Any]:
    """The options that decide a folder run's result, as its manifest records them.

    Parameters
    ----------
    command : str
        ``"segment"`` or ``"predict"``.
    options : mapping
        The command's options that change outputs (method, recipe, probabilities, ROI, ...).
        Paths should be given resolved.
    tokens : sequence of str
        The method's ``--name value`` options.
    model : str or Path, optional
        A model folder: its fingerprint (files, sizes, times) is recorded, so a retrained
        model is a change of options.

    Returns
    -------
    dict

    Examples
    --------
    >>> run_options("segment", {"method": "otsu"}, ["--min-size", "5"])
    {'command': 'segment', 'method': 'otsu', 'tokens': ['--min-size', '5']}
    """
    out: dict[str, Any] = {"command": command, **{k: v for k, v in options.items()}, "tokens": list(tokens)}
    if model is not None:
        out["model"] = str(Path(model).resolve())
        out["model_fingerprint"] = _model_fingerprint(model)
    return out
