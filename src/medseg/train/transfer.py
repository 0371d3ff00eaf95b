"""Starting from an earlier model (``--init-from``, ``--label-map``, ``--adapt-channels``) and the few-shot schedule.

``medseg train DATA --method unet --init-from OLD_MODEL`` builds the old model's network (its
``net``, widths, residual units and normalisation) for the new data and copies every weight
that fits:

- **same classes**: everything is copied and the whole network is fine-tuned;
- **other classes**: the body is copied and the output layer starts anew; ``--label-map
  NEW:OLD,...`` (e.g. ``1:1,2:1``) starts new class NEW from old class OLD's output weights;
- **another channel count** is refused, or with ``--adapt-channels`` the first layer's
  weights are averaged over the old channels and spread over the new ones (the scheme
  segmentation-models-pytorch uses for pretrained RGB encoders on other inputs).

What was copied, re-initialised or adapted is counted and said. With few labelled cases
(at most `FEW_SHOT_CASES` per fold) and a start from earlier weights, training
switches to a schedule made for it (`few_shot_schedule`): fewer epochs, a lower
learning rate, stronger augmentation, and the copied layers frozen (learning rate 0)
for the first part, so the new output layer and the normalisation adapt before the body
moves.

Examples
--------
>>> parse_label_map("1:2, 3:1")
{1: 2, 3: 1}
>>> import torch
>>> old = {"conv.weight": torch.ones(4, 1, 3, 3), "head.weight": torch.ones(2, 4, 1, 1), "head.bias": torch.zeros(2)}
>>> new = {"conv.weight": torch.zeros(4, 1, 3, 3), "head.weight": torch.zeros(3, 4, 1, 1), "head.bias": torch.zeros(3)}
>>> state, rep = transfer_state(old, new, old_classes=2, new_classes=3, old_channels=1, new_channels=1,
...                             label_map={2: 1})
>>> rep.copied, rep.reinitialised, rep.mapped
(1, 0, 2)
>>> float(state["head.weight"][2].sum()), float(state["head.weight"][1].sum())
(4.0, 0.0)
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from medseg.contract import read_model_info
from medseg.dl.checkpoint import load_checkpoint
from medseg.dl.plan import Plan, plan_from_dict
from medseg.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

__all__ = ["FEW_SHOT_CASES", "ARCHITECTURE_FIELDS", "TransferReport", "FewShot", "parse_label_map",
           "probe_axes", "source_model", "source_weights", "transfer_state", "few_shot_schedule", "norm_parameter"]

FEW_SHOT_CASES = 5
"""At most this many labelled training cases (in a fold) make a run few-shot."""

ARCHITECTURE_FIELDS = ("net", "channels", "num_res_units", "norm")
"""The plan fields a network's weights depend on; --init-from takes them from the old model."""


@dataclass
class TransferReport:
    """What `transfer_state` did, tensor by tensor.

    Parameters
    ----------
    copied, reinitialised, adapted, mapped, unused : int
        Tensors copied as they were; left at their new initialisation (other shape); first
        layers adapted to another channel count; output tensors filled from old classes
        through the label map; old tensors with no place in the new network.
    frozen_names : set of str
        The copied and adapted tensors (those a few-shot run freezes first).
    """

    copied: int = 0
    reinitialised: int = 0
    adapted: int = 0
    mapped: int = 0
    unused: int = 0
    frozen_names: set[str] = field(default_factory=set)

    def summary(self) -> str:
        """One line for the log.

        Returns
        -------
        str
        """
        parts = [f"{self.copied} tensors copied"]
        if self.mapped:
            parts.append(f"{self.mapped} output tensors filled through the label map")
        if self.reinitialised:
            parts.append(f"{self.reinitialised} started anew (another shape: the output layer for other classes)")
        if self.adapted:
            parts.append(f"{self.adapted} first-layer tensors adapted to the new channel count")
        if self.unused:
            parts.append(f"{self.unused} old tensors unused")
        return ", ".join(parts)


def parse_label_map(text: str | None) -> dict[int, int]:
    """``"NEW:OLD,NEW:OLD"`` as a dict (empty for None or "").

    Parameters
    ----------
    text : str or None

    Returns
    -------
    dict of int to int

    Raises
    ------
    ConfigError
        A malformed entry, background mapped, or a new class given twice.
    """
    out: dict[int, int] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*:\s*(\d+)", part)
        if not m:
            raise ConfigError(f"--label-map: '{part}' is not NEW:OLD (label values, e.g. 1:2)")
        new, old = int(m.group(1)), int(m.group(2))
        if new == 0 or old == 0:
            raise ConfigError("--label-map maps foreground classes; background (0) always maps to background")
        if new in out:
            raise ConfigError(f"--label-map gives new class {new} twice")
        out[new] = old
    return out


def source_model(model_dir: str | Path) -> tuple[Plan, dict[str, Any]]:
    """The plan and ``model.json`` of an earlier ``unet`` model folder.

    Parameters
    ----------
    model_dir : str or Path

    Returns
    -------
    (Plan, dict)

    Raises
    ------
    ModelError
        Not a (complete) ``unet`` model folder.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelError(f"--init-from {d}: no such model folder")
    info = read_model_info(d)
    if info.get("method") != "unet":
        raise ModelError(f"--init-from {d}: a '{info.get('method')}' model; only deep-learning (unet) models "
                         "can start another training")
    return plan_from_dict(info["plan"]), info


def source_weights(model_dir: str | Path, info: Mapping[str, Any], fold: int) -> dict[str, torch.Tensor]:
    """The old model's weights for fold ``fold``: that fold's if it was trained, else its first fold's.

    Parameters
    ----------
    model_dir : str or Path
    info : mapping
        Its ``model.json``.
    fold : int

    Returns
    -------
    dict of str to torch.Tensor
    """
    folds = [int(k) for k in info.get("folds", [])] or [0]
    k = fold if fold in folds else folds[0]
    ck = load_checkpoint(Path(model_dir) / f"fold_{k}" / "checkpoint_last.pt")
    if "model" not in ck or not isinstance(ck["model"], dict):
        raise ModelError(f"{model_dir}/fold_{k}/checkpoint_last.pt: no network weights")
    return dict(ck["model"])


def _differing_axes(a: tuple[int, ...], b: tuple[int, ...]) -> list[int] | None:
    if len(a) != len(b):
        return None
    return [i for i, (x, y) in enumerate(zip(a, b)) if x != y]


def _axes_of(old: torch.Tensor, new: torch.Tensor, n_old: int, n_new: int) -> list[int]:
    """The axes where ``old`` has ``n_old`` and ``new`` has ``n_new`` and they differ (inferred)."""
    axes = _differing_axes(tuple(old.shape), tuple(new.shape))
    if not axes or any(old.shape[i] != n_old or new.shape[i] != n_new for i in axes):
        return []
    return axes


def _map(old: torch.Tensor, fresh: torch.Tensor, axes: list[int], pairs: list[tuple[int, int]]) -> torch.Tensor:
    """``fresh`` with the entries of the mapped classes (along every class axis) taken from ``old``."""
    t = fresh.clone()
    for combo in itertools.product(pairs, repeat=len(axes)):
        dst: list[Any] = [slice(None)] * t.ndim
        src: list[Any] = [slice(None)] * t.ndim
        for ax, (n, o) in zip(axes, combo):
            dst[ax], src[ax] = n, o
        t[tuple(dst)] = old[tuple(src)]
    return t


def transfer_state(old: Mapping[str, torch.Tensor], new: Mapping[str, torch.Tensor], *, old_classes: int,
                   new_classes: int, old_channels: int, new_channels: int, label_map: Mapping[int, int] | None = None,
                   adapt_channels: bool = False, class_axes: Mapping[str, list[int]] | None = None,
                   channel_axes: Mapping[str, list[int]] | None = None
                   ) -> tuple[dict[str, torch.Tensor], TransferReport]:
    """The new network's state dict with every old tensor that fits.

    Parameters
    ----------
    old, new : mapping of str to torch.Tensor
        The old model's weights; the new network's freshly initialised state dict.
    old_classes, new_classes : int
        Output channels (classes with background) of each.
    old_channels, new_channels : int
        Input channels of each.
    label_map : mapping of int to int, optional
        New class -> old class whose weights it starts from (background maps to background);
        the other new classes keep their fresh weights. Without it, the same number of
        classes copies the output layers as they are and another number starts them anew.
    adapt_channels : bool
        Adapt first-layer weights to another input channel count (else they start anew).
    class_axes, channel_axes : mapping of str to list of int, optional
        Per tensor, its axes that count classes / input channels (found by building the
        network with one class / channel more, see `probe_axes`). Default: inferred
        where the shapes differ, which cannot tell class axes when the class counts match.

    Returns
    -------
    (dict, TransferReport)
    """
    state = {k: v.clone() for k, v in new.items()}
    rep = TransferReport()
    mapping = dict(label_map or {})
    pairs = [(0, 0)] + [(n, o) for n, o in sorted(mapping.items()) if n < new_classes and o < old_classes]
    for name, w_new in new.items():
        w_old = old.get(name)
        if w_old is None or not torch.is_tensor(w_old):
            continue
        w_old = w_old.to(w_new.dtype)
        c_axes = list(class_axes.get(name, [])) if class_axes is not None else _axes_of(
            w_old, w_new, old_classes, new_classes)
        i_axes = list(channel_axes.get(name, [])) if channel_axes is not None else _axes_of(
            w_old, w_new, old_channels, new_channels)
        other = [i for i in range(w_new.ndim) if i not in c_axes and i not in i_axes]
        if w_old.ndim != w_new.ndim or any(w_old.shape[i] != w_new.shape[i] for i in other):
            rep.reinitialised += 1
        elif c_axes and mapping and not i_axes:
            state[name] = _map(w_old, w_new, c_axes, pairs)
            rep.mapped += 1
        elif w_old.shape == w_new.shape:
            state[name] = w_old.clone()
            rep.copied += 1
            rep.frozen_names.add(name)
        elif i_axes and not c_axes and adapt_channels and all(w_old.shape[i] == old_channels for i in i_axes):
            mean = w_old.mean(dim=i_axes, keepdim=True)  # what the old filters respond to, per new channel
            state[name] = (mean * (old_channels / new_channels) ** len(i_axes)).expand_as(w_new).clone()
            rep.adapted += 1
            rep.frozen_names.add(name)
        else:
            rep.reinitialised += 1
    rep.unused = sum(1 for k in old if k not in new)
    return state, rep


def probe_axes(build: Callable[[int, int], Mapping[str, torch.Tensor]], classes: int,
               channels: int) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Which axes of each tensor count classes and which count input channels.

    Parameters
    ----------
    build : callable
        ``build(classes, channels)`` -> a state dict of the network for that many classes and
        input channels.
    classes, channels : int

    Returns
    -------
    (dict, dict)
        Per tensor name, its class axes and its channel axes.
    """
    base = build(classes, channels)
    more_c, more_i = build(classes + 1, channels), build(classes, channels + 1)

    def axes(other: Mapping[str, torch.Tensor]) -> dict[str, list[int]]:
        out = {}
        for k, v in base.items():
            d = _differing_axes(tuple(v.shape), tuple(other[k].shape)) if k in other else None
            if d:
                out[k] = d
        return out
    return axes(more_c), axes(more_i)


@dataclass(frozen=True)
class FewShot:
    """The few-shot schedule of a run (see `few_shot_schedule`).

    Parameters
    ----------
    epochs : int or None
        Epochs when the user gave neither ``--epochs`` nor ``--time-budget`` (else None).
    lr_factor, aug_factor : float
        Multipliers of the planned learning rate and augmentation strength.
    freeze_fraction : float
        Share of the steps during which the copied layers do not move.
    """

    epochs: int | None
    lr_factor: float = 0.25
    aug_factor: float = 1.5
    freeze_fraction: float = 0.2

    def apply(self, plan: Plan) -> Plan:
        """``plan`` with the lower learning rate and stronger augmentation.

        Parameters
        ----------
        plan : Plan

        Returns
        -------
        Plan
        """
        return dataclasses.replace(plan, lr=float(plan.lr) * self.lr_factor,
                                   aug_strength=min(1.0, float(plan.aug_strength) * self.aug_factor
                                                    if plan.aug_strength else 0.5))

    def describe(self, plan: Plan) -> str:
        """One line saying what changed.

        Parameters
        ----------
        plan : Plan
            The plan after `apply`.

        Returns
        -------
        str
        """
        ep = f"{self.epochs} epochs, " if self.epochs else ""
        return (f"few-shot schedule: {ep}learning rate {plan.lr:g} (x{self.lr_factor:g}), augmentation strength "
                f"{plan.aug_strength:.2f} (x{self.aug_factor:g}), copied layers frozen for the first "
                f"{self.freeze_fraction:.0%} of the steps")


def few_shot_schedule(n_train_cases: int, *, from_weights: bool, epochs_given: bool) -> FewShot | None:
    """The few-shot schedule when a run starts from earlier weights with few labelled cases.

    Parameters
    ----------
    n_train_cases : int
        Labelled training cases of the fold with the most.
    from_weights : bool
        The run starts from ``--init-from`` or ``--pretrained`` weights.
    epochs_given : bool
        ``--epochs`` or ``--time-budget`` was given (they are kept).

    Returns
    -------
    FewShot or None
        None when the run is not few-shot.
    """
    if not from_weights or n_train_cases > FEW_SHOT_CASES or n_train_cases < 1:
        return None
    return FewShot(epochs=None if epochs_given else max(10, int(math.ceil(50 * n_train_cases / 10))))


def norm_parameter(name: str, tensor: torch.Tensor) -> bool:
    """Whether a parameter belongs to a normalisation layer (1-D weights and biases of norms).

    Few-shot freezing keeps these trainable: they adapt the copied layers to the new
    intensity statistics.

    Parameters
    ----------
    name : str
    tensor : torch.Tensor

    Returns
    -------
    bool
    """
    low = name.lower()
    return tensor.ndim == 1 and any(s in low for s in ("norm", "bn", ".adn.n"))
