"""Segmentation losses that respect a region of interest (no loss outside it).

All losses take ``logits`` ``(N, C, *spatial)``, an integer ``target`` ``(N, *spatial)``
and an optional 0/1 ``mask`` ``(N, *spatial)``; voxels where ``mask == 0`` contribute
nothing. Dice is the batch ("global") soft Dice over the foreground classes, as in
nnU-Net, which is stable for classes absent from some patches.

In a distributed run ([`medseg.train.distributed`][]) both terms are those of the global
batch: the Dice sums are gathered over the ranks and the cross-entropy is averaged over all
of their voxels, so N processes compute the gradient one process would on the same batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from medseg.errors import ConfigError
from medseg.registry import Registry
from medseg.train.distributed import all_gather_grad, all_reduce_sum, is_distributed, world_size

__all__ = ["LOSSES", "make_loss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("loss")
"""Loss factories by name (``dice_ce``, ``ce``, ``dice``); `make_loss` builds one."""


def _ce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
        weight: torch.Tensor | None) -> torch.Tensor:
    ce = F.cross_entropy(logits, target, weight=weight, reduction="none")
    if not is_distributed():
        if mask is None:
            return ce.mean()
        m = mask.to(ce.dtype)
        return (ce * m).sum() / m.sum().clamp_min(1.0)
    # the mean over the global batch: this rank's sum over all ranks' voxel count, times the
    # ranks (DDP averages the gradients over them)
    if mask is None:
        num, den = ce.sum(), torch.tensor(float(ce.numel()), dtype=ce.dtype, device=ce.device)
    else:
        m = mask.to(ce.dtype)
        num, den = (ce * m).sum(), m.sum()
    return num * world_size() / all_reduce_sum(den).clamp_min(1.0)


def _dice(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
          smooth: float = 1e-5) -> torch.Tensor:
    n_classes = logits.shape[1]
    prob = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target.long(), n_classes).movedim(-1, 1).to(prob.dtype)
    if mask is not None:
        m = mask.unsqueeze(1).to(prob.dtype)
        prob = prob * m
        onehot = onehot * m
    axes = [0] + list(range(2, logits.ndim))
    inter = (prob * onehot).sum(axes)
    denom = prob.sum(axes) + onehot.sum(axes)
    if is_distributed():  # the batch spans the ranks: sum their pieces (with gradient)
        inter, denom = all_gather_grad(inter).sum(0), all_gather_grad(denom).sum(0)
    dice = (2 * inter + smooth) / (denom + smooth)
    return 1.0 - dice[1:].mean()


@LOSSES.register("dice_ce")
def _dice_ce(n_classes: int, weights: Sequence[float] | None = None) -> LossFn:
    w = torch.tensor(list(weights), dtype=torch.float32) if weights else None

    def fn(logits, target, mask=None):
        ww = w.to(logits.device) if w is not None else None
        return _dice(logits, target, mask) + _ce(logits.float(), target, mask, ww)
    return fn


@LOSSES.register("ce")
def _ce_only(n_classes: int, weights: Sequence[float] | None = None) -> LossFn:
    w = torch.tensor(list(weights), dtype=torch.float32) if weights else None

    def fn(logits, target, mask=None):
        return _ce(logits.float(), target, mask, w.to(logits.device) if w is not None else None)
    return fn


@LOSSES.register("dice")
def _dice_only(n_classes: int, weights: Sequence[float] | None = None) -> LossFn:
    def fn(logits, target, mask=None):
        return _dice(logits, target, mask)
    return fn


def make_loss(name: str, n_classes: int, weights: Sequence[float] | None = None) -> LossFn:
    """The loss ``name`` (``dice_ce``, ``dice`` or ``ce``) for ``n_classes`` classes.

    Parameters
    ----------
    name : str
        A name of `LOSSES`.
    n_classes : int
        Classes including background (at least 2).
    weights : sequence of float, optional
        Cross-entropy weights per class.

    Returns
    -------
    callable
        ``loss(logits (N, C, *spatial), target (N, *spatial) int, mask (N, *spatial) or None)``
        -> scalar tensor.

    Examples
    --------
    >>> import torch
    >>> loss = make_loss("dice_ce", 2)
    >>> float(loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), None)) > 0
    True
    """
    if n_classes < 2:
        raise ConfigError("a segmentation loss needs at least two classes")
    return LOSSES.get(name)(n_classes, weights)
