"""The training loop of one fold: poly LR, Dice+CE, clipping, validation, checkpoints, resume.

Layout of a fold folder::

    fold_K/checkpoint_last.pt   weights (state_dict) after every epoch: the model's weights
                                (with --ema on, the running average of the training weights,
                                see medseg.train.ema)
    fold_K/checkpoint_best.pt   the same at the best validation Dice
    fold_K/train_state.pt       optimiser, step, RNG, history, the raw weights under --ema:
                                what --resume needs
    fold_K/log.json             per-epoch loss, learning rate, validation Dice, time
    fold_K/tb/                  TensorBoard logs

All files are written atomically; ``train_state.pt`` is written after the weights, so
the newest state always refers to weights that exist. An exception raised from
``step_callback`` (or an interruption) leaves the last complete epoch's files for
``--resume``.

Validation predicts through the [`Validator`][medseg.dl.validation.Validator] the caller
passes in (sliding windows are inference's business; this package never imports
[`medseg.infer`][]).

Examples
--------
>>> augmentation_workers(0), augmentation_workers(3)
(0, 3)
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.config import save_json
from medseg.dl.checkpoint import load_checkpoint, save_checkpoint
from medseg.dl.device import resolve_device
from medseg.dl.network import build_net
from medseg.dl.plan import Plan
from medseg.dl.validation import Validator, dice_per_class
from medseg.errors import ConfigError
from medseg.progress import Progress
from medseg.train.adversarial import AdversarialTerm
from medseg.train.config import TrainConfig
from medseg.train.data import PatchSampler, Prefetcher, PreparedCase
from medseg.train.distributed import (
    all_gather_object,
    all_reduce_max,
    all_reduce_sum,
    barrier,
    env_world,
    is_distributed,
    rank,
    rank_seed,
    split_batch,
    world_size,
    wrap_ddp,
)
from medseg.train.ema import WeightAverage
from medseg.train.losses import make_loss
from medseg.train.transfer import norm_parameter

log = logging.getLogger(__name__)

__all__ = ["COMPILE_MIN_SECONDS", "train_fold", "validate", "augmentation_workers"]


def _optimizer(plan: Plan, net: torch.nn.Module, frozen: set[str] | None = None) -> torch.optim.Optimizer:
    # foreach: one multi-tensor kernel per update step instead of a Python loop over the
    # parameters (torch uses it by default only on CUDA; on the CPU it saves 1-4 % per step)
    params: Any = net.parameters()
    if frozen:  # two groups: the copied layers (learning rate 0 while frozen) and the rest
        first = [p for n, p in net.named_parameters() if n in frozen and not norm_parameter(n, p)]
        ids = {id(p) for p in first}
        params = [{"params": first, "medseg_frozen": True},
                  {"params": [p for p in net.parameters() if id(p) not in ids], "medseg_frozen": False}]
    if plan.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay, foreach=True)
    if plan.optimizer == "adam":  # the tutorial's (Keras) optimiser; weight decay, if any, as an L2 term
        return torch.optim.Adam(params, lr=plan.lr, weight_decay=plan.weight_decay, foreach=True)
    if plan.optimizer == "sgd":
        return torch.optim.SGD(params, lr=plan.lr, momentum=0.99, nesterov=True,
                               weight_decay=plan.weight_decay, foreach=True)
    raise ConfigError(f"unknown optimizer '{plan.optimizer}'; choose adamw, adam or sgd")


COMPILE_MIN_SECONDS = 300.0
"""A fold planned to train at least this long (seconds) is compiled under ``--compile auto``."""


def _use_compile(cfg, plan, time_budget_s: float | None, total_steps: int | None) -> bool:
    """Whether to ``torch.compile`` the training network (``cfg.compile``: auto, on, off).

    Compiling costs 20-60 s on a CPU and then saves 8 % (3D U-Net) to 20 % (2D) of every
    step (benchmarks/results/dl.md), so ``auto`` compiles only folds planned to train for
    `COMPILE_MIN_SECONDS` or more: by the time budget, or by the steps times the
    step time measured when planning. The decision depends on the configuration and the
    fold's budget, so a resumed fold decides as the interrupted one did (the compiled
    kernels are deterministic: a resumed compiled run ends bit-identical on the CPU)."""
    mode = getattr(cfg, "compile", "off")
    if mode in ("on", "off"):
        return mode == "on"
    if not hasattr(torch, "compile"):
        return False
    if time_budget_s is not None:
        planned = time_budget_s
    else:
        planned = (total_steps or 0) * float(getattr(plan, "step_seconds", 0.0) or 0.0)
    return planned >= COMPILE_MIN_SECONDS


def _compiled(net: torch.nn.Module) -> torch.nn.Module | None:
    try:
        return torch.compile(net)
    except Exception as e:  # noqa: BLE001 - any failure means: train uncompiled
        log.warning("torch.compile is not available here (%s); training without it", _first_line(e))
        return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


def _forward_backward(model, loss_fn, xt, yt, mt, scaler, device, use_amp: bool,
                      adv: AdversarialTerm | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    with torch.autocast(device.type, enabled=use_amp):
        out = model(xt)
    loss = _loss_value(loss_fn, out.float(), yt, mt)
    head = None
    if adv is not None:  # the full-resolution output (the first head under deep supervision)
        head = out[:, 0] if out.ndim == yt.ndim + 2 else out
        loss = loss + adv.segmentor_term(xt, head, yt, mt)
    scaler.scale(loss).backward()
    return loss, None if head is None else head.detach()


def _poly(lr0: float, frac: float) -> float:
    return lr0 * (1.0 - min(max(frac, 0.0), 1.0)) ** 0.9


def validate(net: torch.nn.Module, cases: Sequence[PreparedCase], plan: Plan, device: torch.device,
             validator: Validator, *, shard: bool = False) -> tuple[float, list[np.ndarray]]:
    """Mean foreground Dice over ``cases`` (inside their ROIs) and the softmax maps.

    With ``shard`` in a distributed run, each rank predicts every N-th case and the scores
    are gathered, so every rank returns the same mean (and the softmax maps of its own cases,
    rank 0's starting with the first case).

    Parameters
    ----------
    net : torch.nn.Module
        The training network; it is in training mode again on return.
    cases : sequence of PreparedCase
        The held-out cases.
    plan : Plan
    device : torch.device
    validator : Validator
        Predicts the cases (see [`probabilities`][medseg.dl.validation.Validator.probabilities]).

    Returns
    -------
    score : float
        Mean over cases of the mean Dice of the foreground classes (``nan`` without cases).
    probs : list of ndarray, each (K, *spatial)
        The softmax of each case.
    """
    r, w = (rank(), world_size()) if shard else (0, 1)
    mine = list(cases)[r::w]
    probs = validator.probabilities(net, plan, [c.image for c in mine], device=str(device)) if mine else []
    scores = []
    for c, p in zip(mine, probs):
        roi = None if c.roi is None else c.roi.astype(bool)
        scores.append(float(np.mean(dice_per_class(p.argmax(0), c.label, plan.n_classes, roi))))
    if w > 1:  # every rank's scores, in case order (the mean is then that of one process)
        parts = all_gather_object(scores)
        scores = [parts[i % w][i // w] for i in range(len(cases))]
    net.train()
    return float(np.mean(scores)) if scores else float("nan"), probs


def _loss_value(loss_fn, out: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    if out.ndim == y.ndim + 2:  # deep supervision: (N, heads, C, ...), heads upsampled by MONAI
        heads = out.shape[1]
        w = torch.tensor([0.5 ** i for i in range(heads)], device=out.device)
        w = w / w.sum()
        return sum(w[i] * loss_fn(out[:, i], y, m) for i in range(heads))
    return loss_fn(out, y, m)


def train_fold(train_cases: Sequence[PreparedCase], val_cases: Sequence[PreparedCase], plan: Plan, fold_dir: Path,
               cfg: TrainConfig, *, validator: Validator, time_budget_s: float | None = None,
               step_callback: Callable[[int], None] | None = None, data_parallel: bool = True,
               initialise: Callable[[torch.nn.Module], set[str]] | None = None,
               freeze_fraction: float = 0.0) -> dict[str, Any]:
    """Train one fold into ``fold_dir`` and return a summary (best Dice, steps, time).

    Parameters
    ----------
    train_cases, val_cases : sequence of PreparedCase
        Training and held-out cases (no validation when ``val_cases`` is empty).
    plan : Plan
    fold_dir : Path
        The fold's folder (see the module docstring for what is written there).
    cfg : TrainConfig
        ``epochs``, ``iters_per_epoch``, ``val_every``, ``patience``, ``resume``, ...
    validator : Validator
        Predicts the held-out cases at each validation.
    time_budget_s : float, optional
        Stop when this much wall time (including earlier, resumed sessions) has passed; the
        learning rate then decays with elapsed time. Otherwise ``cfg.epochs`` epochs run.
    step_callback : callable, optional
        ``step_callback(step)`` after each optimisation step; what it raises propagates
        (the files of the last finished epoch stay, for ``--resume``).
    data_parallel : bool
        In a distributed run ([`medseg.train.distributed`][]), train this fold with all
        ranks (DistributedDataParallel: the plan's batch split over them, per-rank sampling
        seeds, the elapsed time and the validation shared, only rank 0 writing); False: this
        rank trains the fold alone (``--distribute folds``).
    initialise : callable, optional
        ``initialise(net)`` sets the new network's weights (``--init-from``) and returns the
        names of the copied tensors.
    freeze_fraction : float
        Share of the steps during which the copied tensors (except normalisation layers)
        keep a learning rate of 0 (the few-shot schedule).

    Returns
    -------
    dict
        ``steps``, ``elapsed_s``, ``best_val_dice``, ``early_stopped``, ``compiled``,
        ``first_step_s`` and ``history`` (one record per epoch), as in ``log.json``.
    """
    ddp = data_parallel and is_distributed()
    rnk, world = (rank(), world_size()) if ddp else (0, 1)
    writes = rnk == 0  # rank 0 writes checkpoints, logs and TensorBoard for the job
    if writes:
        fold_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(resolve_device(cfg.device))
    if ddp and device.type == "cuda":
        device = torch.device("cuda", env_world()[2])
        torch.cuda.set_device(device)
    torch.manual_seed(cfg.seed)
    net = build_net(plan).to(device)
    copied = initialise(net) if initialise is not None else set()
    opt = _optimizer(plan, net, copied if freeze_fraction > 0 else None)
    ema = WeightAverage(net) if getattr(cfg, "ema", "off") == "on" else None
    shipped = ema.module if ema is not None else net  # what validation scores and the checkpoints hold
    adv = None
    if getattr(cfg, "adversarial", False):
        if ddp:
            raise ConfigError("--adversarial trains in one process; leave out --nproc/torchrun or --adversarial")
        if not cfg.adversarial_weight > 0:
            raise ConfigError(f"--adversarial-weight must be positive, got {cfg.adversarial_weight}")
        adv = AdversarialTerm(dims=plan.dims, in_channels=plan.in_channels, n_classes=plan.n_classes, lr=plan.lr,
                              weight=cfg.adversarial_weight, seed=cfg.seed, device=device)
    if ddp:
        sizes = split_batch(plan.batch_size, world)
        log.debug("%s: data parallel over %d processes: global batch %d (%s per process), learning rate %g",
                 fold_dir.name, world, sum(sizes), "+".join(map(str, sizes)), plan.lr)
    loss_fn = make_loss(plan.loss, plan.n_classes, plan.class_weights or None)
    ipe = max(1, int(cfg.iters_per_epoch))
    epochs = cfg.epochs if cfg.epochs is not None else (None if time_budget_s else 50)
    total_steps = epochs * ipe if epochs is not None else None
    state_path = fold_dir / "train_state.pt"
    step, elapsed, best, bad, history = 0, 0.0, -1.0, 0, []
    val_s = 0.0
    if cfg.resume and state_path.is_file():
        st = load_checkpoint(state_path)
        w = load_checkpoint(fold_dir / "checkpoint_last.pt")
        net.load_state_dict(st["raw_model"] if "raw_model" in st else w["model"])
        opt.load_state_dict(st["optimizer"])
        if ema is not None:
            if "raw_model" not in st:
                raise ConfigError(f"{fold_dir}: the interrupted run kept no weight average; resume with --ema off")
            ema.load_state_dict(w["model"])
        elif "raw_model" in st:
            raise ConfigError(f"{fold_dir}: the interrupted run averaged its weights; resume with --ema on")
        if adv is not None:
            if "adversarial" not in st:
                raise ConfigError(f"{fold_dir}: the interrupted run was not adversarial; resume without --adversarial")
            adv.load_state_dict(st["adversarial"])
        rngs = st.get("torch_rng_ranks")
        if rngs is not None and len(rngs) == world:
            torch.set_rng_state(rngs[rnk])
        else:
            torch.set_rng_state(st["torch_rng"])
            if int(st.get("world_size", 1)) != world:
                log.warning("%s: resuming with %d process(es) where the run had %d: it goes on from the same "
                            "weights, but not bit-identically to an uninterrupted run", fold_dir.name, world,
                            int(st.get("world_size", 1)))
        step, elapsed, best, bad = int(st["step"]), float(st["elapsed"]), float(st["best"]), int(st["bad"])
        history = list(st["history"])
        val_s = float(st.get("val_s", 0.0))
        log.info("resuming %s at step %d (%.0f s done)", fold_dir, step, elapsed)
    if st_done := (total_steps is not None and step >= total_steps) or (
            time_budget_s is not None and elapsed >= time_budget_s):
        log.info("%s: already complete", fold_dir)
    sampler = PatchSampler(train_cases, dataclasses.replace(plan, batch_size=split_batch(plan.batch_size, world)[rnk])
                           if ddp else plan, seed=rank_seed(cfg.seed, rank=rnk, world=world), augment=plan.augment)
    writer = _tb_writer(fold_dir / "tb") if writes else None
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    stop = total_steps if total_steps is not None else 1 << 40
    bar = Progress(total_steps if total_steps is not None else round(time_budget_s or 0),
                   initial=step if total_steps is not None else round(elapsed), enabled=cfg.progress and rank() == 0,
                   unit="step" if total_steps is not None else "s", desc=fold_dir.name)
    failed = True
    t_last = time.perf_counter()
    net.train()
    ep_losses: list[float] = []
    stopped_early = False
    compile_s = None
    workers = augmentation_workers(cfg.workers, device.type, processes=env_world()[3] if is_distributed() else 1)
    prefetch = Prefetcher(sampler, step, stop, workers=workers) if not st_done else None
    # the compiled module shares net's parameters; validation and checkpoints use net itself
    compile_it = not st_done and _use_compile(cfg, plan, time_budget_s, total_steps)
    if compile_it and ddp:
        log.info("%s: torch.compile is off in distributed training", fold_dir.name)
        compile_it = False
    model = _compiled(net) if compile_it else None
    first_compiled = model is not None
    model = wrap_ddp(net, device) if ddp else (net if model is None else model)
    try:
        for x, y, m in (prefetch or []):
            frac = step / total_steps if total_steps is not None else elapsed / time_budget_s
            lr = _poly(plan.lr, frac)
            for g in opt.param_groups:
                g["lr"] = 0.0 if g.get("medseg_frozen") and frac < freeze_fraction else lr
            xt = torch.from_numpy(x).to(device)
            yt = torch.from_numpy(y).to(device)
            mt = torch.from_numpy(m).to(device)
            opt.zero_grad(set_to_none=True)
            if first_compiled:  # compiling happens here; if it fails, this step runs uncompiled
                first_compiled = False
                t_c = time.perf_counter()
                try:
                    loss, head = _forward_backward(model, loss_fn, xt, yt, mt, scaler, device, use_amp, adv)
                    log.info("%s: network compiled in %.0f s (first step)", fold_dir.name, time.perf_counter() - t_c)
                except Exception as e:  # noqa: BLE001 - compiler missing or unsupported op
                    log.warning("torch.compile failed (%s); training goes on without it", _first_line(e))
                    model = net
                    opt.zero_grad(set_to_none=True)
                    loss, head = _forward_backward(net, loss_fn, xt, yt, mt, scaler, device, use_amp, adv)
                compile_s = time.perf_counter() - t_c
            else:
                loss, head = _forward_backward(model, loss_fn, xt, yt, mt, scaler, device, use_amp, adv)
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip, foreach=True)
            scaler.step(opt)
            scaler.update()
            if adv is not None and head is not None:
                adv.critic_step(xt, head, yt, mt)
            step += 1
            if ema is not None:
                ema.update(net, step)
            ep_losses.append(float(loss.detach()))
            now = time.perf_counter()
            elapsed += now - t_last
            t_last = now
            if ddp:  # the slowest rank's clock: all ranks stop, validate and decay the LR together
                elapsed = all_reduce_max(elapsed)
            bar.update(1) if total_steps is not None else bar.update(max(0, round(elapsed) - bar.n))
            if step_callback is not None:
                step_callback(step)
            out_of_time = time_budget_s is not None and elapsed >= time_budget_s
            if step % ipe == 0 or out_of_time or step == stop:
                epoch = (step + ipe - 1) // ipe
                mean_loss = float(np.mean(ep_losses))
                if ddp:  # each rank's loss is its share of the global one (see medseg.train.losses)
                    mean_loss = float(all_reduce_sum(torch.tensor([mean_loss], dtype=torch.float64))[0]) / world
                rec = {"epoch": epoch, "step": step, "loss": mean_loss, "lr": lr,
                       "elapsed_s": round(elapsed, 2), "train_s": round(elapsed - val_s, 2)}
                ep_losses = []
                if val_cases and (epoch % max(1, cfg.val_every) == 0 or out_of_time or step == stop):
                    score, probs = validate(shipped, val_cases, plan, device, validator, shard=ddp)
                    rec["val_dice"] = score
                    if writes:
                        _tb_images(writer, val_cases[0], probs[0], step)
                    if score > best:
                        best, bad = score, 0
                        if writes:
                            save_checkpoint({"model": shipped.state_dict(), "step": step, "val_dice": score},
                                            fold_dir / "checkpoint_best.pt")
                    else:
                        bad += 1
                    bar.set_postfix(loss=f"{rec['loss']:.3f}", dice=f"{score:.3f}")
                history.append(rec)
                _tb_scalars(writer, rec)
                now = time.perf_counter()
                elapsed += now - t_last  # validation time counts against the budget
                val_s += now - t_last
                t_last = now
                if ddp:
                    elapsed, val_s = all_reduce_max(elapsed), all_reduce_max(val_s)
                rec["elapsed_s"] = round(elapsed, 2)
                rngs = all_gather_object(torch.get_rng_state()) if ddp else None
                if writes:
                    _save_state(fold_dir, net, opt, step, elapsed, best, bad, history, val_s, rngs, adv, ema)
                if cfg.patience and bad >= cfg.patience:
                    log.info("early stopping after %d validations without improvement", bad)
                    stopped_early = True
                    break
                if time_budget_s is not None and elapsed >= time_budget_s:
                    break
        failed = False
    finally:
        if prefetch is not None:
            prefetch.close()
        bar.close(failed=failed)
        if writer is not None:
            writer.close()
    if writes and not (fold_dir / "checkpoint_best.pt").is_file():
        save_checkpoint({"model": shipped.state_dict(), "step": step, "val_dice": float("nan")},
                        fold_dir / "checkpoint_best.pt")
    summary = {"steps": step, "elapsed_s": round(elapsed, 1), "best_val_dice": best if best >= 0 else None,
               "early_stopped": stopped_early, "compiled": model is not net and not ddp,
               "first_step_s": None if compile_s is None else round(compile_s, 2),
               "weight_average": ema is not None, "history": history}
    if ddp:
        summary["processes"] = world
    if writes:
        save_json(summary, fold_dir / "log.json")
    barrier() if ddp else None  # the fold's files exist before any rank goes on
    return summary


def _save_state(fold_dir: Path, net, opt, step, elapsed, best, bad, history, val_s,
                rngs: list[torch.Tensor] | None = None, adv: AdversarialTerm | None = None,
                ema: WeightAverage | None = None) -> None:
    # checkpoint_last holds the weights the model ships (the average with --ema on); the raw
    # weights that the optimisation continues from go to train_state.pt
    shipped = ema.state_dict() if ema is not None else net.state_dict()
    save_checkpoint({"model": shipped, "step": step}, fold_dir / "checkpoint_last.pt")
    extra: dict[str, Any] = {} if rngs is None else {"torch_rng_ranks": rngs, "world_size": len(rngs)}
    if ema is not None:
        extra["raw_model"] = net.state_dict()
    if adv is not None:
        extra["adversarial"] = adv.state_dict()
    save_checkpoint({"optimizer": opt.state_dict(), "step": step, "elapsed": elapsed, "best": best, "bad": bad,
                     "history": history, "val_s": val_s, "torch_rng": torch.get_rng_state(), **extra},
                    fold_dir / "train_state.pt")


def _tb_writer(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))


def _tb_scalars(writer, rec: dict[str, Any]) -> None:
    if writer is None:
        return
    for k in ("loss", "lr", "val_dice"):
        if k in rec:
            writer.add_scalar(f"train/{k}" if k != "val_dice" else "val/dice", rec[k], rec["step"])


def _tb_images(writer, case: PreparedCase, prob: np.ndarray, step: int) -> None:
    """An overlay (image, truth in green, prediction in red) of the middle slice."""
    if writer is None:
        return
    img = case.image[0]
    lab, pred = case.label, prob.argmax(0)
    if img.ndim == 3:
        z = img.shape[0] // 2
        img, lab, pred = img[z], lab[z], pred[z]
    g = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
    rgb = np.stack([g, g, g])
    rgb[0] = np.where(pred > 0, 1.0, rgb[0])
    rgb[1] = np.where(lab > 0, np.maximum(rgb[1], 0.7), rgb[1])
    writer.add_image("val/overlay", rgb.astype(np.float32), step)


def augmentation_workers(requested: int | None, device: str = "cpu", *, processes: int = 1) -> int:
    """Threads that prepare batches.

    As asked, else one per core beyond the first, so the training thread keeps a core of its
    own (on 2 cores: 1 worker, measured 17 % more samples/s than 2 workers on the
    Hippocampus benchmark, see benchmarks/results/dl.md). On the CPU at most 2 (the cores
    also run the network); on a GPU, where the cores only prepare batches, at most 8 (an
    H200 run with 2 was bound by batch preparation).

    Parameters
    ----------
    requested : int or None
        ``--workers`` (0: batches made in the training thread); ``None``: from the cores.
    device : str
        ``"cpu"`` or a CUDA device.
    processes : int
        Training processes sharing this machine's cores (distributed training).

    Returns
    -------
    int
    """
    if requested is not None:
        return max(0, int(requested))  # 0: batches made in the training thread
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores = max(1, cores // max(1, processes))
    return max(1, min(8 if str(device).startswith("cuda") else 2, cores - 1))

