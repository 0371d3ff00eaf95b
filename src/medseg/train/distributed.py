"""Data-parallel training on ``torch.distributed``, launched by ``torchrun`` (or ``medseg train --nproc N``).

``torchrun --nproc_per_node N [--nnodes M ...] -m medseg train DATASET --method unet ...`` starts N
processes per machine; each learns its rank from the environment torchrun sets (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), and
`process_group` joins them with gloo on the CPU or NCCL on GPUs. What this module gives
the training code:

- who is who (`rank`, `world_size`, `is_distributed`) and per-rank seeds
  (`rank_seed`): each rank samples other patches; a single process keeps ``--seed``;
- the global batch split over the ranks (`split_batch`); the plan's batch size and
  learning rate stay the global ones, as in nnU-Net, so N processes take the same kind of
  step as one, N times faster at best;
- the collectives the loop and the losses need: sums without gradient
  (`all_reduce_sum`), a gather *with* gradient (`all_gather_grad`, for the
  batch Dice whose sums span the global batch), agreement on a number
  (`all_reduce_max`), objects (`broadcast_object`, `all_gather_object`),
  and `on_rank0`, which runs a step on rank 0 and re-raises its error on every rank so
  a bad option stops all ranks with the same message instead of leaving them waiting;
- `launch`, the ``--nproc`` shortcut: torch's elastic launcher on this machine; a rank
  that dies stops the others, and the command ends with one line naming it.

Examples
--------
>>> rank(), world_size(), is_distributed()
(0, 1, False)
>>> rank_seed(7, rank=0, world=1)
7
>>> split_batch(5, 2)
[3, 2]
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import torch
import torch.distributed as dist

from medseg import errors
from medseg.errors import ConfigError, MedsegError

log = logging.getLogger(__name__)

__all__ = ["TIMEOUT", "RankFailedError", "all_gather_grad", "all_gather_object", "all_reduce_max",
           "all_reduce_sum", "barrier", "broadcast_object", "env_world", "first_line", "is_distributed", "launch",
           "on_rank0", "process_group", "rank", "rank_seed", "split_batch", "world_size", "wrap_ddp"]

TIMEOUT = datetime.timedelta(hours=2)
"""How long a rank waits in a collective for the others (a dead peer is noticed at once; this
bounds a live but stuck one, e.g. rank 0 choosing the inference window on a large dataset)."""

T = TypeVar("T")


class RankFailedError(MedsegError):
    """Another rank of a distributed run stopped (it died, or its connection broke)."""


def env_world() -> tuple[int, int, int, int]:
    """``(rank, world_size, local_rank, local_world_size)`` as torchrun sets them (``(0, 1, 0, 1)`` without).

    Returns
    -------
    tuple of int

    Raises
    ------
    ConfigError
        The variables are malformed.
    """
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rnk = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rnk)))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    except ValueError as exc:
        raise ConfigError(f"malformed torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None
    if world < 1 or not 0 <= rnk < world:
        raise ConfigError(f"malformed torchrun environment: RANK={rnk}, WORLD_SIZE={world}")
    return rnk, world, local, max(1, local_world)


def is_distributed() -> bool:
    """Whether this process is one of several in an initialised process group.

    Returns
    -------
    bool
    """
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group).

    Returns
    -------
    int
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes (1 without a process group).

    Returns
    -------
    int
    """
    return dist.get_world_size() if is_distributed() else 1


def rank_seed(seed: int, *, rank: int | None = None, world: int | None = None) -> int:
    """The sampling seed of ``rank``: ``seed`` itself for a single process, else one derived from both.

    Parameters
    ----------
    seed : int
        ``--seed``.
    rank, world : int, optional
        Default: this process's.

    Returns
    -------
    int
    """
    r = globals()["rank"]() if rank is None else rank
    w = world_size() if world is None else world
    if w == 1:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), 7919, w, r]).generate_state(1)[0])


def split_batch(global_batch: int, world: int) -> list[int]:
    """The per-rank batch sizes of a global batch (the first ranks take the remainder).

    Parameters
    ----------
    global_batch : int
    world : int

    Returns
    -------
    list of int
        One size per rank, each at least 1 (a global batch smaller than ``world`` grows to it).
    """
    g = max(int(global_batch), int(world))
    return [g // world + (1 if r < g % world else 0) for r in range(world)]


def _backend(device: str) -> str:
    return "nccl" if device.startswith("cuda") and dist.is_nccl_available() else "gloo"


@contextlib.contextmanager
def process_group(device: str) -> Iterator[tuple[int, int]]:
    """Join the torchrun job this process belongs to, for the duration of the block.

    Without torchrun's environment (``WORLD_SIZE`` unset or 1), or when a group is already
    initialised, nothing is done. Otherwise the group is initialised with NCCL for a CUDA
    ``device`` and gloo on the CPU, this rank's CPU threads are set to its share of the
    cores, and the group is destroyed when the block ends.

    Parameters
    ----------
    device : str
        ``"cpu"`` or a CUDA device name.

    Yields
    ------
    tuple of int
        ``(rank, world_size)``.
    """
    rnk, world, _local, local_world = env_world()
    if world == 1 or (dist.is_available() and dist.is_initialized()):
        yield rank(), world_size()
        return
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; train in one process")
    backend = _backend(device)
    try:
        dist.init_process_group(backend=backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"could not join the distributed job ({backend}): {first_line(exc)}") from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not device.startswith("cuda"):
        torch.set_num_threads(max(1, cores // local_world))
    if rnk != 0:  # rank 0 speaks for the job; the others only report errors
        logging.getLogger("medseg").setLevel(logging.ERROR)
    log.debug("distributed: rank %d of %d (%s)", rnk, world, backend)
    done = False
    try:
        yield rnk, world
        done = True
    finally:
        if done:  # every rank finished: meet before any tears down (a rank whose peer left while
            # the group was being destroyed could abort at exit: "terminate called without an active exception")
            with contextlib.suppress(RuntimeError, ValueError):
                dist.barrier()
        with contextlib.suppress(RuntimeError, ValueError):
            dist.destroy_process_group()


def first_line(exc: BaseException) -> str:
    """An exception's first line, at most 300 characters (for one-line messages).

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
    """
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def wrap_ddp(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` in `DistributedDataParallel` (``net`` itself in one process).

    Parameters
    ----------
    net : torch.nn.Module
        The network, already on ``device``; checkpoints keep saving ``net`` itself.
    device : torch.device

    Returns
    -------
    torch.nn.Module
    """
    if not is_distributed():
        return net
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over the ranks, without gradient (``t`` itself in one process).

    Parameters
    ----------
    t : torch.Tensor

    Returns
    -------
    torch.Tensor
    """
    if not is_distributed():
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_reduce_max(x: float) -> float:
    """The largest ``x`` over the ranks (``x`` in one process): how ranks agree on elapsed time.

    Parameters
    ----------
    x : float

    Returns
    -------
    float
    """
    if not is_distributed():
        return float(x)
    t = torch.tensor([float(x)], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward hands each rank the summed gradient of its own piece."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]


def all_gather_grad(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` stacked on a new first axis, differentiable (``t[None]`` in one process).

    The backward sums the gradients the ranks computed for each piece and gives each rank
    its own, so a loss computed on the gathered sums (the same on every rank) yields,
    after DDP's averaging, the gradient of that loss over the global batch.

    Parameters
    ----------
    t : torch.Tensor

    Returns
    -------
    torch.Tensor
        ``(world_size, *t.shape)``.
    """
    if not is_distributed():
        return t.unsqueeze(0)
    return _GatherWithGrad.apply(t)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable objects; ``obj`` in one process).

    Parameters
    ----------
    obj : object
    src : int

    Returns
    -------
    object
    """
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process).

    Parameters
    ----------
    obj : object

    Returns
    -------
    list
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if is_distributed():
        dist.barrier()


def on_rank0(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 and give its result to every rank; its error is raised on every rank.

    The error keeps its [`MedsegError`][medseg.errors.MedsegError] class and message, so all ranks
    stop with the same line; another exception stops the others with a
    `RankFailedError` and propagates on rank 0.

    Parameters
    ----------
    fn : callable
        Called without arguments on rank 0 only (in one process: just called).

    Returns
    -------
    object
        ``fn()``'s result.
    """
    if not is_distributed():
        return fn()
    payload: tuple[str, Any, str]
    failure: BaseException | None = None
    if rank() == 0:
        try:
            payload = ("ok", fn(), "")
        except MedsegError as exc:
            payload, failure = ("error", type(exc).__name__, str(exc)), exc
        except BaseException as exc:  # noqa: BLE001 - told to the other ranks, then re-raised here
            payload, failure = ("crash", type(exc).__name__, first_line(exc)), exc
    else:
        payload = ("", None, "")
    payload = broadcast_object(payload)
    if failure is not None:
        raise failure
    kind, value, message = payload
    if kind == "ok":
        return cast(T, value)
    if kind == "error":
        cls = getattr(errors, str(value), MedsegError)
        err = (cls if isinstance(cls, type) and issubclass(cls, MedsegError) else MedsegError)(message)
        err.replicated = True  # type: ignore[attr-defined]  # rank 0 prints it; the CLI keeps the others quiet
        raise err
    err = RankFailedError(f"rank 0 failed ({value}: {message}); every rank stops")
    err.replicated = True  # type: ignore[attr-defined]
    raise err


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``medseg ARGV`` in ``nproc`` processes on this machine (the ``--nproc`` shortcut).

    The same as ``torchrun --standalone --nproc_per_node NPROC -m medseg ARGV``, through
    torch's elastic launcher: the processes print as ``medseg`` does (rank 0 only); if one
    dies, the launcher stops the others and this raises an error naming the rank.

    Parameters
    ----------
    nproc : int
        Processes to start (at least 2).
    argv : sequence of str
        The ``medseg`` arguments, without ``--nproc``.

    Returns
    -------
    int
        0 when every rank succeeded, 2 after a user error (which rank 0 printed).

    Raises
    ------
    RankFailedError
        A rank died or failed otherwise; the others were stopped.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 2:
        raise ConfigError(f"--nproc must be at least 2, got {nproc}")
    for name in ("torch.distributed.elastic", "torch.distributed.launcher", "torch.distributed.run"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=int(nproc), run_id="medseg-train",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                          monitor_interval=0.5)
    env_threads = os.environ.get("OMP_NUM_THREADS")
    try:
        if env_threads is None:  # the ranks share the cores themselves (process_group); quiet torch's notice
            os.environ["OMP_NUM_THREADS"] = "1"
        elastic_launch(config, sys.executable)("-m", "medseg", *argv)
    except ChildFailedError as exc:
        failures = sorted(exc.failures.items())
        if any(f.exitcode == 2 for _, f in failures):  # a user error, printed once; the others were stopped
            return 2
        r, f = failures[0]
        how = f"signal {f.signal_name()}" if f.exitcode < 0 else f"exit code {f.exitcode}"
        raise RankFailedError(f"rank {r} of {nproc} stopped ({how}); the other ranks were stopped too "
                              "(continue with --resume)") from None
    finally:
        if env_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
    return 0
