"""Self-configuration: dataset fingerprint -> [`Plan`][medseg.dl.plan.Plan] (``plan.json``).

The fingerprint ([`medseg.fingerprint.fingerprint`][], the one ``medseg inspect`` shows)
summarises what the plan needs: spatial dimensionality, shapes, spacings, channels,
modality, foreground intensity statistics and class frequencies. The plan derives from it
the target spacing (median), per-channel normalisation (a channel named CT,
`is_ct_channel`: clip to the foreground 0.5-99.5 percentiles and z-score with dataset
statistics; otherwise, MR and the rest: per-image z-score), the channel names and the
fusion of the modalities (``early``: channels; ``late``: one encoder each), the patch
size (median shape, capped by a memory budget), the network
width and the batch size (timed on this machine so that the requested time budget allows
enough optimisation steps) and class weights. Every field can be overridden with
``overrides``.

Examples
--------
>>> fp = {"dims": 2, "n_cases": 4, "shapes": [[64, 64]] * 4, "spacings": [[1.0, 1.0]] * 4,
...       "n_channels": 1, "declared_modality": [], "fg_stats": [[0.0, 1.0, 0.5, 0.2]],
...       "class_counts": {"0": 9000, "1": 1000}, "label_names": {}, "has_roi": False}
>>> plan = make_plan(fp, measure=False)
>>> plan.patch_size, plan.n_classes, plan.target_spacing
((64, 64), 2, (1.0, 1.0))
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from typing import Any

import numpy as np

from medseg.dl.plan import Plan
from medseg.errors import ConfigError, InputError, suggest

log = logging.getLogger(__name__)

__all__ = ["FULL_AUG_PASSES", "make_plan", "augmentation_strength", "is_ct_channel"]

FULL_AUG_PASSES = 50.0
"""Passes over the training voxels after which the full nnU-Net-style augmentation is used.
Augmentation fights over-fitting, which needs many passes over the same data; in a short
schedule it only slows learning down (nnU-Net itself runs ~1000 epochs). Below this the
transform probabilities (flips included) are scaled by passes / FULL_AUG_PASSES."""


def is_ct_channel(name: str) -> bool:
    """Whether a channel named ``name`` is CT (normalised with the dataset's CT statistics).

    ``CT`` itself, or ``CT`` followed by a separator or a digit (``CT_venous``, ``ct-arterial``,
    ``CT2``); every other channel (``T1``, ``FLAIR``, ``ADC``, ``PET``, ...) is z-scored per image.

    Examples
    --------
    >>> [is_ct_channel(n) for n in ("CT", "ct_venous", "CTA", "T1", "PET")]
    [True, True, False, False, False]
    """
    return re.fullmatch(r"ct([^a-z].*)?", str(name).strip().lower()) is not None


def _round_patch(shape: list[float], div: int, cap_vox: float) -> list[int]:
    s = np.array(shape, dtype=float)
    while np.prod(s) > cap_vox:
        s[np.argmax(s)] *= 0.9
    return [max(div, int(math.ceil(x / div) * div)) for x in s]


def _deep_enough(patch: list[int], div: int) -> bool:
    """Whether the deepest level of a network that divides ``patch`` by ``div`` keeps more than
    one voxel (instance normalisation needs at least two)."""
    return int(np.prod([p // div for p in patch])) >= 2


def _widths(level: int, dims: int, depth: int) -> tuple[int, ...]:
    base = (8, 16, 24, 32)[level]
    cap = 320 if dims == 3 else 512
    return tuple(min(cap, base * 2 ** i) for i in range(depth))


def _time_step(plan: Plan, device: str, n: int = 3) -> float:
    """Seconds per training step (forward+backward+update) of ``plan`` on ``device``: the
    fastest of ``n`` steps after a warm-up step (the minimum is the estimate least disturbed
    by other work on the machine)."""
    import torch

    from medseg.dl.network import build_net  # deferred: imports torch
    from medseg.train.losses import make_loss  # deferred: imports torch

    torch.manual_seed(0)
    net = build_net(plan).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss = make_loss(plan.loss, plan.n_classes, None)
    x = torch.randn((plan.batch_size, plan.in_channels) + tuple(plan.patch_size), device=device)
    y = torch.randint(0, plan.n_classes, (plan.batch_size,) + tuple(plan.patch_size), device=device)
    times = []
    for i in range(n + 1):  # the first step warms up allocators and kernels
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = net(x)
        if out.ndim == y.ndim + 2:  # deep supervision (dynunet): the full-resolution head
            out = out[:, 0]
        loss(out, y, None).backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t)
    return float(min(times))


FEW_STEPS = 250
"""Fewer steps than this in the time budget, even for the smallest width: the planner halves
the batch (down to 2), then the patch's longest axis, until the network gets this many
(bench_nets: r2unet on Hippocampus got 1 step in 2 minutes, unet++ on DRIVE 9)."""


def _shrink_for_budget(plan: Plan, sec: float, budget_s: float, div: int, device: str) -> tuple[Plan, float]:
    """Smaller batches, then patches, of ``plan`` until ``FEW_STEPS`` steps fit in ``budget_s``."""
    floor = 2 * div if plan.dims == 3 else max(2 * div, 32)
    while budget_s / sec < FEW_STEPS:
        patch = list(plan.patch_size)
        if plan.batch_size > 2:
            new = dataclasses.replace(plan, batch_size=max(2, plan.batch_size // 2))
        else:
            i = int(np.argmax(patch))
            half = (patch[i] // 2) // div * div
            if half < floor:
                break
            patch[i] = half
            if not _deep_enough(patch, div):
                break
            new = dataclasses.replace(plan, patch_size=tuple(patch))
        t = _time_step(new, device)
        log.info("plan: %.0f steps of batch %d, patch %s in the budget: trying batch %d, patch %s (%.3f s/step)",
                 budget_s / sec, plan.batch_size, "x".join(map(str, plan.patch_size)), new.batch_size,
                 "x".join(map(str, new.patch_size)), t)
        plan, sec = new, t
    return plan, sec


def _flops(plan: Plan) -> float:
    """Relative convolution cost of a training step (width^2 x voxels per level x batch)."""
    vox = float(np.prod(plan.patch_size))
    return plan.batch_size * sum(c * c * vox / (2 ** plan.dims) ** i for i, c in enumerate(plan.channels))


def _memory_budget(device: str) -> float:
    """Bytes available for activations during training."""
    if device.startswith("cuda"):
        import torch

        return 0.6 * torch.cuda.get_device_properties(0).total_memory
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8e9
    return min(0.25 * avail, 6e9)


def _act_bytes(patch: list[int], channels: tuple, batch: int) -> float:
    vox = float(np.prod(patch))
    total = sum(c * vox / (2 ** len(patch)) ** i for i, c in enumerate(channels))
    return batch * total * 4 * 24  # ~24 stored tensors per feature map (convs, norms, residuals, grads)


def augmentation_strength(plan: Plan, fp: dict[str, Any], steps: float | None) -> float:
    """Augmentation strength (0..1) for a schedule of ``steps`` optimisation steps.

    The schedule shows each training voxel ``passes = steps * batch * patch_voxels /
    (n_cases * median_case_voxels)`` times, where ``patch_voxels`` counts only the part of a
    patch a median case fills (a patch larger than the case along an axis is padding there,
    which teaches nothing); the strength is ``passes / FULL_AUG_PASSES`` capped at 1
    (``steps`` unknown: 1).

    Parameters
    ----------
    plan : Plan
        Its ``batch_size`` and ``patch_size``.
    fp : dict
        The fingerprint (``shapes``, ``spacings``, ``n_cases``).
    steps : float or None
        Optimisation steps of the schedule.

    Returns
    -------
    float
        Rounded to three decimals.

    Examples
    --------
    >>> fp = {"shapes": [[20, 20, 20]] * 10, "spacings": [[1.0, 1.0, 1.0]] * 10, "n_cases": 10}
    >>> augmentation_strength(Plan(dims=3, patch_size=(16, 16, 16), batch_size=2), fp, 100)
    0.205
    >>> augmentation_strength(Plan(dims=3, patch_size=(32, 32, 32), batch_size=2), fp, 100)  # padding: no more
    0.4
    """
    if steps is None or not np.isfinite(steps):
        return 1.0
    spacings = np.array(fp["spacings"], dtype=float)
    shapes = np.array(fp["shapes"], dtype=float) * spacings / np.median(spacings, axis=0)  # at the target spacing
    case_vox = float(np.median(np.prod(shapes, axis=1))) * max(1, int(fp["n_cases"]))
    filled = np.minimum(np.asarray(plan.patch_size, dtype=float), np.median(shapes, axis=0))
    passes = float(steps) * plan.batch_size * float(np.prod(filled)) / max(case_vox, 1.0)
    return round(float(np.clip(passes / FULL_AUG_PASSES, 0.0, 1.0)), 3)


def make_plan(fp: dict[str, Any], *, overrides: dict[str, Any] | None = None,
              time_budget_s: float | None = None, train_steps: int | None = None,
              device: str = "cpu", min_steps: int = 4000, measure: bool = True) -> Plan:
    """Derive a [`Plan`][medseg.dl.plan.Plan] from a fingerprint.

    Parameters
    ----------
    fp : dict
        From [`medseg.fingerprint.fingerprint`][] (``strict=True``); the planner reads
        ``dims``, ``n_cases``, ``shapes``, ``spacings``, ``n_channels``,
        ``declared_modality``, ``fg_stats``, ``class_counts``, ``label_names`` and
        ``has_roi``.
    overrides : dict, optional
        Plan fields given by the user (win over everything derived).
    time_budget_s : float, optional
        Training time budget in seconds; the network width and batch size are chosen so
        that at least ``min_steps`` steps fit in it (timed on ``device``). When even the
        smallest network cannot reach ``min_steps``, the batch size with the highest
        measured samples/s is taken (the budget then limits samples, not steps).
    train_steps : int, optional
        Steps of an epoch-based schedule (sets the augmentation strength).
    device : str
        Where training will run (memory budget, step timing).
    min_steps : int
        Steps the time budget should allow.
    measure : bool
        Time training steps when a time budget is given (else the default widths).

    Returns
    -------
    Plan

    Raises
    ------
    ConfigError
        An unknown override, a patch size the network cannot halve, or no network that
        fits the memory budget.
    InputError
        The labels hold only background.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - {f.name for f in dataclasses.fields(Plan)}
    if unknown:
        k = sorted(unknown)[0]
        raise ConfigError(f"unknown plan field '{k}'{suggest(k, [f.name for f in dataclasses.fields(Plan)])}")
    dims = fp["dims"]
    spacings = np.array(fp["spacings"], dtype=float)
    target = tuple(float(x) for x in np.median(spacings, axis=0))
    shapes = np.array(fp["shapes"], dtype=float) * spacings / np.array(target)
    median_shape = np.median(shapes, axis=0)
    values = sorted(int(k) for k in fp["class_counts"])
    n_classes = max(values) + 1
    if n_classes < 2:
        raise InputError("the labels contain only background (0); nothing to learn — check the label maps")
    counts = np.array([fp["class_counts"].get(str(c), 0) for c in range(n_classes)], dtype=float)
    absent = [c for c in range(1, n_classes) if counts[c] == 0]
    if absent:
        log.warning("label value(s) %s never occur in the training labels (values present: %s); the "
                    "network still has an output for each, which it will learn never to predict — "
                    "relabel to consecutive values if these classes do not exist",
                    ", ".join(map(str, absent)), ", ".join(map(str, values)))
    freq = counts / counts.sum()
    weights = np.clip((freq.max() / np.maximum(freq, 1e-6)) ** 0.25, 1.0, 4.0)
    if "dice" in str(overrides.get("loss", Plan.loss)):
        # the Dice term already balances the classes (as in nnU-Net); weighting the CE term
        # as well over-segments rare classes (Hippocampus, 4 min: 0.823 -> 0.860 without)
        weights = np.array([])
    declared = [str(m) for m in fp.get("declared_modality") or []]
    norm_kind, ct_stats = [], []
    for c in range(fp["n_channels"]):
        is_ct = c < len(declared) and is_ct_channel(declared[c])
        norm_kind.append("ct" if is_ct else "zscore")
        ct_stats.append(tuple(fp["fg_stats"][c]) if is_ct and c < len(fp["fg_stats"]) else ())
    depth = overrides.get("channels") and len(overrides["channels"]) or 4
    from medseg.nets import check_net_dims, net_divisor  # deferred: imports torch

    check_net_dims(str(overrides.get("net") or Plan.net), dims)  # e.g. a 2D-only encoder U-Net on volumes
    div = net_divisor(str(overrides.get("net") or Plan.net), [0] * depth)  # unet++ 16, swin-unetr 32, smp 32
    cap = 256 ** 2 if dims == 2 else 96 ** 3
    patch = _round_patch(list(median_shape), div, cap)
    # small volumes: a patch that holds the largest case whole (one window at inference,
    # full context in training) when it costs at most twice the median-shape patch
    largest = np.max(shapes, axis=0)
    whole = _round_patch(list(largest), div, cap)
    if dims == 3 and np.prod(whole) <= 2 * np.prod(patch) and all(w >= s for w, s in zip(whole, largest)):
        patch = whole
    if dims == 2 and device == "cpu":  # small 2D patches train much faster per voxel on CPU
        patch = [min(p, 128) for p in patch]
    if not _deep_enough(patch, div):  # tiny images: pad them to a patch the network can halve
        patch = [max(p, 2 * div) for p in patch]
    if overrides.get("patch_size"):
        patch = [int(p) for p in overrides["patch_size"]]
        if len(patch) != dims or min(patch) < 1 or any(p % div for p in patch) or not _deep_enough(patch, div):
            raise ConfigError(f"--patch-size {','.join(map(str, patch))}: give {dims} sizes, each a multiple of "
                              f"{div} (the network divides the patch by {div}), at least one of them "
                              f"{2 * div} or more")
    names = fp.get("label_names") or {}
    fusion = str(overrides.get("fusion") or Plan.fusion)
    if fusion not in ("early", "late"):
        raise ConfigError(f"--fusion must be early or late, got {fusion!r}")
    if fusion == "late" and fp["n_channels"] < 2:
        raise ConfigError("--fusion late needs at least two modalities (channels); this dataset has "
                          f"{fp['n_channels']}")
    if fusion == "late" and str(overrides.get("net") or Plan.net) != "unet":
        raise ConfigError(f"--fusion late builds its own U-Net (one encoder per modality); it does not combine with "
                          f"--net {overrides.get('net')}: leave --net out")
    base = dict(dims=dims, in_channels=fp["n_channels"], n_classes=n_classes,
                channel_names=tuple(declared) if len(declared) == fp["n_channels"] else (),
                reference=str(fp.get("reference") or ""),
                class_names={str(c): names.get(str(c), "background" if c == 0 else f"class{c}")
                             for c in range(n_classes)},
                target_spacing=target, normalisation=tuple(norm_kind), ct_stats=tuple(ct_stats),
                patch_size=tuple(patch), class_weights=tuple(round(float(w), 4) for w in weights),
                use_roi=bool(fp.get("has_roi")), roi_outside=str((fp.get("roi_outside") or {}).get("policy") or ""),
                mirror_axes=tuple(range(dims)),
                rot90=bool(dims == 2 or np.allclose(target[1], target[2], rtol=0.1)))
    mem = _memory_budget(device)
    # candidate (width level, batch): widest first; keep the first that fits memory and time
    candidates = []
    for level in (3, 2, 1):
        for batch in ((16, 12, 8) if dims == 2 else (8, 4, 2)):
            candidates.append((level, batch))
    chosen = None
    fixed = {k: v for k, v in overrides.items() if k not in ("channels", "batch_size", "patch_size")}
    if time_budget_s is None or not measure:
        # by epochs: the moderate default (16-32-64-128 widths), no timing needed
        chans = tuple(overrides.get("channels") or _widths(1, dims, depth))
        b = int(overrides.get("batch_size") or (8 if dims == 2 else 2))
        if _act_bytes(patch, chans, b) <= mem or "batch_size" in overrides:
            chosen = Plan(**{**base, "channels": chans, "batch_size": b, **fixed})
        candidates = [] if chosen else candidates
    # time one small reference network, estimate the others from their convolution cost
    # (FLOPs scale with width^2 x voxels), then time the chosen one
    feasible = []
    for level, batch in candidates:
        chans = tuple(overrides.get("channels") or _widths(level, dims, depth))
        b = int(overrides.get("batch_size") or batch)
        if _act_bytes(patch, chans, b) <= mem:
            feasible.append(Plan(**{**base, "channels": chans, "batch_size": b, **fixed}))
    if feasible and chosen is None and (time_budget_s is None or not measure):
        chosen = min(feasible, key=_flops)  # memory forced a smaller network than the default
    if feasible and chosen is None:
        ref = min(feasible, key=_flops)
        t_ref = _time_step(ref, device)
        for plan in feasible:
            est = t_ref * _flops(plan) / _flops(ref)
            if time_budget_s / est >= min_steps or plan is ref:
                break
        sec = t_ref if plan is ref else _time_step(plan, device)
        if plan is ref and time_budget_s / sec < min_steps and "batch_size" not in overrides:
            # time-bound: samples matter more than steps; a larger batch of the same network
            # often processes more samples per second (better use of the cores)
            # (timed alternately, the fastest of each kept, so that a burst of other work on
            # the machine does not decide: DRIVE chose batch 12 in one run and 8 in another)
            for other in sorted((p for p in feasible if p.channels == ref.channels and p.batch_size > ref.batch_size),
                                key=lambda p: p.batch_size):
                t_o = _time_step(other, device)
                sec = min(sec, _time_step(plan, device))
                t_o = min(t_o, _time_step(other, device))
                if other.batch_size / t_o > 1.1 * plan.batch_size / sec:
                    plan, sec = other, t_o
                else:
                    break
        if plan is ref and time_budget_s / sec < FEW_STEPS and not {"batch_size", "patch_size"} & set(overrides):
            plan, sec = _shrink_for_budget(plan, sec, time_budget_s, div, device)
        log.info("plan: channels=%s batch=%d, %.3f s/step -> %d steps in the budget", plan.channels,
                 plan.batch_size, sec, time_budget_s / sec)
        chosen = dataclasses.replace(plan, step_seconds=round(sec, 4))
        train_steps = int(time_budget_s / sec)
    if chosen is not None and "aug_strength" not in overrides:
        chosen = dataclasses.replace(chosen, aug_strength=augmentation_strength(chosen, fp, train_steps))
        log.info("plan: augmentation strength %.3f for %s steps", chosen.aug_strength, train_steps)
    if chosen is None:
        raise ConfigError(f"no network fits the memory budget ({mem / 1e9:.1f} GB) with patch {patch}; "
                          "give a smaller --patch-size")
    return chosen
