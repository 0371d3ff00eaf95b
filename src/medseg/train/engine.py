"""k-fold orchestration: fingerprint, plan, split, prepare, train each fold, let inference
choose the window and the post-processing on the held-out cases, write the model folder
(``model.json`` last, so a folder without it is incomplete).

Inference comes in as a [`Validator`][medseg.dl.validation.Validator] argument: the ``unet``
method ([`medseg.methods.dl`][]) passes [`medseg.infer.validation.PredictorValidator`][].

Examples
--------
>>> make_splits(["a", "b", "c", "d"], 2, seed=0)[0]["val"]
['c', 'd']
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medseg.config import save_json
from medseg.contract import write_model_info
from medseg.dl.device import resolve_device
from medseg.dl.folds import parse_folds
from medseg.dl.network import build_net, load_fold_net
from medseg.dl.plan import Plan, plan_from_dict
from medseg.dl.validation import Validator
from medseg.errors import ConfigError, InputError
from medseg.fingerprint import fingerprint
from medseg.io import Dataset
from medseg.metrics.probability import fit_temperature
from medseg.roi import BACKGROUND, UNKNOWN, roi_record
from medseg.train.config import TrainConfig
from medseg.train.data import PreparedCase, prepare_case
from medseg.train.distributed import (
    RankFailedError,
    all_gather_object,
    barrier,
    broadcast_object,
    first_line,
    is_distributed,
    on_rank0,
    process_group,
    rank,
    split_batch,
    world_size,
)
from medseg.train.loop import train_fold
from medseg.train.planner import make_plan
from medseg.train.transfer import (
    ARCHITECTURE_FIELDS,
    FewShot,
    few_shot_schedule,
    parse_label_map,
    probe_axes,
    source_model,
    source_weights,
    transfer_state,
)

log = logging.getLogger(__name__)

__all__ = ["train_model", "make_splits", "fit_validation_temperature"]

_PLAN_OVERRIDES = ("net", "patch_size", "batch_size", "channels", "lr", "optimizer", "loss", "fusion")


def make_splits(case_ids: list[str], n_folds: int, seed: int) -> list[dict[str, list[str]]]:
    """``n_folds`` train/val splits of ``case_ids`` (shuffled with ``seed``).

    Parameters
    ----------
    case_ids : list of str
    n_folds : int
        1: every case trains, none is held out.
    seed : int

    Returns
    -------
    list of dict
        Per fold ``{"train": [...], "val": [...]}`` (what ``splits.json`` holds).

    Raises
    ------
    ConfigError
        ``n_folds`` below 1.
    InputError
        Fewer cases than folds.
    """
    if n_folds < 1:
        raise ConfigError(f"--folds must be at least 1, got {n_folds}")
    if n_folds == 1:
        return [{"train": list(case_ids), "val": []}]
    if len(case_ids) < n_folds:
        raise InputError(f"the dataset has {len(case_ids)} cases, too few for {n_folds}-fold cross-validation; "
                         f"use --folds {max(1, len(case_ids))} or fewer (or --folds 1 to train without validation)")
    from sklearn.model_selection import KFold

    ids = sorted(case_ids)
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [{"train": [ids[i] for i in tr], "val": [ids[i] for i in va]} for tr, va in kf.split(ids)]


def _overrides(cfg: TrainConfig) -> dict[str, Any]:
    ov: dict[str, Any] = {}
    if cfg.plan:
        p = Path(cfg.plan)
        if not p.is_file():
            raise ConfigError(f"--plan {p}: no such file")
        try:
            ov.update(json.loads(p.read_text()))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--plan {p}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    for k in _PLAN_OVERRIDES:
        v = getattr(cfg, k)
        if v is not None:
            ov[k] = v
    return ov


def train_model(dataset: Dataset, out_dir: str | Path, cfg: TrainConfig | None = None, *, validator: Validator,
                step_callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train the self-configured U-Net on ``dataset`` into the model folder ``out_dir``.

    A run that fails or is interrupted before its first checkpoint removes what it wrote (a
    bad option or case leaves no half-written model folder behind); after that, the folder
    is kept for ``--resume``.

    Parameters
    ----------
    dataset : Dataset
        Labelled training cases.
    out_dir : str or Path
        The model folder (new or empty, or an interrupted run's with ``cfg.resume``).
    cfg : TrainConfig, optional
    validator : Validator
        Inference for validation and for the final choice of the inference window and
        post-processing ([`medseg.infer.validation.PredictorValidator`][]).
    step_callback : callable, optional
        ``step_callback(step)`` after each optimisation step; what it raises propagates.

    Returns
    -------
    dict
        The model description written to ``model.json`` (without its format header).
    """
    out = Path(out_dir)
    cfg = cfg or TrainConfig()
    with process_group(resolve_device(cfg.device)) as (rnk, _world):
        existed = out.is_dir()
        before = set(out.iterdir()) if existed else set()
        try:
            return _train_model(dataset, out, cfg, validator=validator, step_callback=step_callback)
        except BaseException as exc:
            if rnk == 0 and out.is_dir() and not any(out.glob("fold_*/checkpoint_last.pt")):
                for p in ([out] if not existed else [q for q in out.iterdir() if q not in before]):
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            if is_distributed() and isinstance(exc, RuntimeError):  # a collective failed: a peer is gone
                raise RankFailedError(f"another rank of the distributed run stopped ({first_line(exc)}); "
                                      "every rank stops (resume with --resume)") from None
            raise


def _check(dataset: Dataset, out: Path, cfg: TrainConfig) -> None:
    if cfg.distribute not in ("data", "folds"):
        raise ConfigError(f"--distribute must be data or folds, got {cfg.distribute!r}")
    if cfg.pretrained and cfg.init_from:
        raise ConfigError("give --init-from (a medseg model) or --pretrained (an encoder's weights), not both")
    if cfg.pretrained and not Path(cfg.pretrained).is_file():
        raise ConfigError(f"--pretrained {cfg.pretrained}: no such file")
    if cfg.adversarial and not (math.isfinite(cfg.adversarial_weight) and cfg.adversarial_weight > 0):
        raise ConfigError(f"--adversarial-weight must be positive, got {cfg.adversarial_weight}")
    if cfg.adversarial and world_size() > 1 and cfg.distribute == "data":
        raise ConfigError("--adversarial trains each fold in one process; use --distribute folds, or train "
                          "without --nproc/torchrun")
    if cfg.time_budget is not None and not (math.isfinite(cfg.time_budget) and cfg.time_budget > 0):
        raise ConfigError(f"--time-budget must be positive minutes, got {cfg.time_budget}")
    if cfg.compile not in ("auto", "on", "off"):
        raise ConfigError(f"--compile must be auto, on or off, got {cfg.compile!r}")
    if cfg.ema not in ("on", "off"):
        raise ConfigError(f"--ema must be on or off, got {cfg.ema!r}")
    if cfg.epochs is not None and cfg.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {cfg.epochs}")
    if cfg.epochs is not None and cfg.time_budget is not None:
        raise ConfigError("give --epochs or --time-budget, not both")
    if out.exists() and any(out.iterdir()) and not cfg.resume:
        raise InputError(f"{out}: the folder exists and is not empty; use --resume to continue a run "
                         "or choose a new --out")
    if not dataset.has_labels:
        raise InputError(f"{dataset.root}: the dataset has no labels; training needs label maps")
    missing = [c.case_id for c in dataset.cases if c.label is None]
    if missing:
        raise InputError(f"{len(missing)} case(s) have no label map (e.g. {', '.join(missing[:3])}); "
                         "add their labels or remove them from the dataset")


def _prepare_run(dataset: Dataset, out: Path, cfg: TrainConfig) -> tuple[dict[str, Any], list[dict[str, list[str]]]]:
    """Check, fingerprint, plan and split (rank 0 of a distributed run); the plan as JSON and the splits."""
    _check(dataset, out, cfg)
    splits = make_splits([c.case_id for c in dataset.cases], cfg.folds, cfg.seed)
    folds = parse_folds(cfg.fold, cfg.folds)
    device = resolve_device(cfg.device)
    out.mkdir(parents=True, exist_ok=True)
    plan_file = out / "plan.json"
    src = source_model(cfg.init_from) if cfg.init_from else None
    few = _few_shot(cfg, splits, folds)
    if cfg.resume and plan_file.is_file():
        plan = plan_from_dict(json.loads(plan_file.read_text()))
    else:
        fp = fingerprint(dataset, seed=cfg.seed, strict=True)
        save_json(fp, out / "fingerprint.json")
        n_par = len(folds) / max(1, min(world_size(), len(folds))) if cfg.distribute == "folds" else len(folds)
        budget = cfg.time_budget * 60 / n_par if cfg.time_budget else None
        epochs = cfg.epochs or (few.epochs if few and few.epochs else 50)
        steps = None if budget else epochs * max(1, int(cfg.iters_per_epoch))
        overrides = _overrides(cfg)
        if src is not None:
            overrides = _inherit_architecture(overrides, src[0], cfg)
        plan = make_plan(fp, overrides=overrides, time_budget_s=budget, train_steps=steps, device=device)
        if src is not None:
            _check_transfer(plan, src[0], cfg)
        if few is not None:
            plan = few.apply(plan)
            log.info("%s", few.describe(plan))
        save_json(plan.to_json(), plan_file)
    log.info("plan: %s", json.dumps(plan.to_json()))
    if is_distributed():
        sizes = split_batch(plan.batch_size, world_size())
        log.info("distributed: %d processes, %s", world_size(),
                 f"global batch {sum(sizes)} ({'+'.join(map(str, sizes))} per process), learning rate {plan.lr:g}"
                 if cfg.distribute == "data" else "one fold per process at a time (--distribute folds)")
    _say_roi(plan)
    save_json({"folds": splits}, out / "splits.json")
    return plan.to_json(), splits


def _inherit_architecture(overrides: dict[str, Any], old: Plan, cfg: TrainConfig) -> dict[str, Any]:
    """The plan overrides with the old model's architecture (``--init-from``); a clash is an error."""
    out = dict(overrides)
    for f in ARCHITECTURE_FIELDS:
        want = getattr(old, f)
        given = out.get(f)
        if given is not None and (list(given) if isinstance(given, (list, tuple)) else given) != (
                list(want) if isinstance(want, (list, tuple)) else want):
            raise ConfigError(f"--init-from {cfg.init_from}: the model's {f} is {want!r}, the options ask for "
                              f"{given!r}; leave --{f.replace('_', '-')} out to start from its weights")
        out[f] = list(want) if isinstance(want, tuple) else want
    return out


def _check_transfer(plan: Plan, old: Plan, cfg: TrainConfig) -> None:
    """Refuse what ``--init-from`` cannot start from: other dimensions, other channels without
    ``--adapt-channels``, a label map naming classes that do not exist."""
    src = cfg.init_from
    if plan.dims != old.dims:
        raise ConfigError(f"--init-from {src}: the model is {old.dims}D, the data is {plan.dims}D")
    if plan.in_channels != old.in_channels and not cfg.adapt_channels:
        raise ConfigError(f"--init-from {src}: the model takes {old.in_channels} channel(s), the data has "
                          f"{plan.in_channels}; give --adapt-channels to adapt its first layer, or start from a "
                          f"model trained on {plan.in_channels}-channel data")
    mapping = parse_label_map(cfg.label_map)
    for new, o in mapping.items():
        if new >= plan.n_classes:
            raise ConfigError(f"--label-map {new}:{o}: the data has no class {new} (its classes are 0-"
                              f"{plan.n_classes - 1})")
        if o >= old.n_classes:
            raise ConfigError(f"--label-map {new}:{o}: the model {src} has no class {o} (its classes are 0-"
                              f"{old.n_classes - 1})")
    if cfg.label_map and not mapping:
        raise ConfigError("--label-map is empty; give NEW:OLD pairs, e.g. 1:1,2:1")
    if plan.n_classes != old.n_classes and not mapping:
        log.info("--init-from: the model has %d classes, the data %d: the output layer starts anew "
                 "(--label-map NEW:OLD starts a class from an old one)", old.n_classes, plan.n_classes)


def _few_shot(cfg: TrainConfig, splits: list[dict[str, list[str]]], folds: list[int]) -> FewShot | None:
    most = max((len(splits[k]["train"]) for k in folds), default=0)
    return few_shot_schedule(most, from_weights=bool(cfg.init_from or getattr(cfg, "pretrained", None)),
                             epochs_given=cfg.epochs is not None or cfg.time_budget is not None)


def _initialiser(cfg: TrainConfig, plan: Plan, fold: int) -> Callable[[Any], set[str]] | None:
    """What sets a fold's new network's weights before training (``--init-from``, ``--pretrained``), or None."""
    if cfg.pretrained and not cfg.init_from:
        from medseg.nets.pretrained import load_pretrained  # deferred: only with --pretrained

        def pretrained(net: Any) -> set[str]:
            rep = load_pretrained(net, cfg.pretrained or "")  # logs how many tensors matched; none: an error
            prefix = "encoder." if isinstance(getattr(net, "encoder", None), torch.nn.Module) else ""
            return {prefix + k for k in rep.matched}
        return pretrained
    if not cfg.init_from:
        return None
    old_plan, old_info = source_model(cfg.init_from)
    mapping = parse_label_map(cfg.label_map)

    def shapes(classes: int, channels: int) -> dict[str, Any]:
        return build_net(dataclasses.replace(plan, n_classes=classes, in_channels=channels)).state_dict()

    def init(net: Any) -> set[str]:
        old = source_weights(cfg.init_from or "", old_info, fold)
        class_axes, channel_axes = probe_axes(shapes, plan.n_classes, plan.in_channels)
        state, rep = transfer_state(old, net.state_dict(), old_classes=old_plan.n_classes,
                                    new_classes=plan.n_classes, old_channels=old_plan.in_channels,
                                    new_channels=plan.in_channels, label_map=mapping,
                                    adapt_channels=cfg.adapt_channels, class_axes=class_axes,
                                    channel_axes=channel_axes)
        if rep.copied + rep.adapted + rep.mapped == 0:
            raise ConfigError(f"--init-from {cfg.init_from}: no weight of the model fits this network")
        net.load_state_dict(state)
        log.info("fold %d: --init-from %s: %s", fold, cfg.init_from, rep.summary())
        return rep.frozen_names
    return init


def _train_model(dataset: Dataset, out: Path, cfg: TrainConfig, *, validator: Validator,
                 step_callback: Callable[[int], None] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan_json, splits = on_rank0(lambda: _prepare_run(dataset, out, cfg))
    plan = plan_from_dict(plan_json)
    folds = parse_folds(cfg.fold, cfg.folds)
    device = resolve_device(cfg.device)
    rnk, world = rank(), world_size()
    by_fold_rank = cfg.distribute == "folds" and world > 1
    mine = folds[rnk::world] if by_fold_rank else folds
    few = _few_shot(cfg, splits, folds)
    by_id = {c.case_id: c for c in dataset.cases}
    cache: dict[str, Any] = {}

    def prep(cid: str) -> PreparedCase:
        if cid not in cache:
            cache[cid] = prepare_case(dataset, by_id[cid], plan, seed=cfg.seed)
        return cache[cid]

    fold_info = {}
    for k in mine:
        remaining = None
        if cfg.time_budget:
            used = time.perf_counter() - t0 if not cfg.resume else 0.0
            remaining = max(1.0, (cfg.time_budget * 60 - used) / (len(mine) - mine.index(k)))
            if not by_fold_rank:  # every rank trains this fold: one budget for all
                remaining = broadcast_object(remaining)
        tr = [prep(c) for c in splits[k]["train"]]
        va = [prep(c) for c in splits[k]["val"]]
        _warn_unseen_classes(k, splits[k], plan, lambda cid: set(prep(cid).fg_index))
        fold_cfg = cfg if cfg.epochs is not None or cfg.time_budget else dataclasses.replace(
            cfg, epochs=few.epochs if few and few.epochs else 50)
        summary = train_fold(tr, va, plan, out / f"fold_{k}", fold_cfg, validator=validator,
                             time_budget_s=remaining, step_callback=step_callback, data_parallel=not by_fold_rank,
                             initialise=_initialiser(cfg, plan, k),
                             freeze_fraction=few.freeze_fraction if few else 0.0)
        fold_info[str(k)] = {"best_val_dice": summary["best_val_dice"], "steps": summary["steps"],
                             "elapsed_s": summary["elapsed_s"]}
    if by_fold_rank:  # every rank's folds, for model.json
        for part in all_gather_object(fold_info):
            fold_info.update(part)
        fold_info = {str(k): fold_info[str(k)] for k in folds}
    barrier()
    return on_rank0(lambda: _finish(out, cfg, plan, folds, splits, fold_info, prep, validator, device, few))


def _finish(out: Path, cfg: TrainConfig, plan: Plan, folds: list[int], splits: list[dict[str, list[str]]],
            fold_info: dict[str, Any], prep: Callable[[str], PreparedCase], validator: Validator,
            device: str, few: FewShot | None) -> dict[str, Any]:
    """Choose the inference window and post-processing, fit the temperature, write ``model.json``."""
    # the held-out cases of each fold with its network at the end of training; inference
    # chooses the window and the post-processing on them
    held_out = ((load_fold_net(out / f"fold_{k}", plan, device, "checkpoint_last.pt"),
                 [prep(cid) for cid in splits[k]["val"]]) for k in folds if splits[k]["val"])
    choice = validator.choose_inference(held_out, plan, device=device)
    held_out = ((load_fold_net(out / f"fold_{k}", plan, device, "checkpoint_last.pt"),
                 [prep(cid) for cid in splits[k]["val"]]) for k in folds if splits[k]["val"])
    temperature = fit_validation_temperature(held_out, plan, validator, device=device, seed=cfg.seed)
    info = {"plan": plan.to_json(), "folds": folds, "n_folds": cfg.folds, "fold_results": fold_info,
            "postprocessing": choice.postprocessing, "inference_window": choice.window,
            **({"temperature": temperature} if temperature is not None else {}),
            "inference_window_val_dice": choice.val_dice, "train_options": dataclasses.asdict(cfg),
            "roi": roi_record((plan.roi_outside or UNKNOWN) if plan.use_roi else None)}
    if cfg.init_from:
        info["init_from"] = {"model": str(cfg.init_from), "label_map": parse_label_map(cfg.label_map),
                             "adapt_channels": bool(cfg.adapt_channels)}
    if few is not None:
        info["few_shot"] = dataclasses.asdict(few)
    if world_size() > 1:
        info["distributed"] = {"processes": world_size(), "mode": cfg.distribute,
                               "backend": "nccl" if device.startswith("cuda") else "gloo",
                               **({"global_batch": plan.batch_size,
                                   "batch_per_process": split_batch(plan.batch_size, world_size())}
                                  if cfg.distribute == "data" else {})}
    write_model_info(out, "unet", info)
    return info


def fit_validation_temperature(folds: Iterable[tuple[Any, Sequence[Any]]], plan: Plan, validator: Validator, *,
                               device: str, seed: int = 0, max_voxels: int = 2_000_000) -> float | None:
    """Temperature scaling fitted on the held-out cases (``model.json``'s ``temperature``).

    Each fold's network predicts its held-out cases (``validator.probabilities``: training-size
    windows, no mirroring); one temperature for all folds minimises the negative
    log-likelihood of their voxels (inside the ROI where there is one), at most
    ``max_voxels`` of them drawn evenly from the cases
    ([`medseg.metrics.probability.fit_temperature`][]). Prediction divides every member's
    logits by it.

    Parameters
    ----------
    folds : iterable of (network, cases)
        Each fold's network with its held-out (prepared) cases.
    plan : Plan
    validator : Validator
    device : str
    seed : int
    max_voxels : int

    Returns
    -------
    float or None
        ``T`` rounded to 4 decimals; None without held-out cases.
    """
    logs, truths = [], []
    for net, cases in folds:
        cases = list(cases)
        if not cases:
            continue
        per_case = max(1, max_voxels // max(1, len(cases)))
        rng = np.random.default_rng(seed)
        for c, prob in zip(cases, validator.probabilities(net, plan, [c.image for c in cases], device=device)):
            keep = np.ones(c.label.shape, bool) if c.roi is None else np.asarray(c.roi, bool)
            idx = np.flatnonzero(keep.ravel())
            if idx.size > per_case:
                idx = rng.choice(idx, per_case, replace=False)
            logs.append(np.log(np.clip(prob.reshape(prob.shape[0], -1)[:, idx], 1e-12, None)))
            truths.append(np.asarray(c.label).reshape(-1)[idx])
    if not logs:
        return None
    t = fit_temperature(np.concatenate(logs, axis=1), np.concatenate(truths), max_voxels=max_voxels, seed=seed)
    log.info("temperature fitted on %d validation voxels: %.3f", sum(x.size for x in truths), t)
    return round(t, 4)


def _say_roi(plan: Plan) -> None:
    """Tell what the training ROIs mean for the model (see [`medseg.roi`][])."""
    if not plan.use_roi:
        return
    if plan.roi_outside == BACKGROUND:
        log.info("ROI: every label outside it is background, so the network also learns the outside "
                 "(predictions are clean without an ROI)")
    else:
        log.warning("ROI: some labels outside it are not background, so training stays inside it and the "
                    "model will need an ROI at prediction (medseg predict --roi)")


def _warn_unseen_classes(k: int, split: dict[str, list[str]], plan: Plan,
                         present: Callable[[str], set[int]]) -> None:
    """Warn when a class occurs only in fold ``k``'s held-out cases: the fold's network never
    sees it in training (a rare class and too many folds, or an unlucky split).
    ``present(case_id)`` gives the foreground label values in a case."""
    seen = set().union(*(present(c) for c in split["train"]))
    for c in range(1, plan.n_classes):
        if c in seen:
            continue
        held = [cid for cid in split["val"] if c in present(cid)]
        if held:
            name = plan.class_names.get(str(c), str(c))
            log.warning("fold %d: label %d (%s) occurs in none of its %d training cases, only in held-out "
                        "case(s) %s; this fold's network cannot learn it — use fewer --folds or add cases "
                        "with that label", k, c, name, len(split["train"]), ", ".join(held[:5]))
