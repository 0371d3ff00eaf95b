"""A running average of the network's weights over the tail of training (``--ema``).

The average after step ``t`` is ``w_avg <- d_t * w_avg + (1 - d_t) * w`` with
``d_t = a (t - 1) / (1 + a (t - 1))``, ``a = 0.1``: its effective window (``1 / (1 - d_t)`` steps) is
about a tenth of the steps taken so far, whatever the length of the run, so a 2-minute and
a 2-hour run both average over their last ~10 %. No schedule or step count has to be known
in advance (the time-budgeted runs do not know theirs), and a resumed run continues the
same average bit for bit (the decay depends only on the step).

The averaged weights are what validation scores and what the model ships
(``checkpoint_best.pt``, ``checkpoint_last.pt``); the raw weights continue the optimisation
and are kept in ``train_state.pt`` for ``--resume``.
"""
from __future__ import annotations

import copy

import torch

__all__ = ["WeightAverage", "tail_decay"]

TAIL = 0.1
"""Share of the steps so far that the average covers (``a`` in the module docstring)."""


def tail_decay(step: int, tail: float = TAIL) -> float:
    """Decay of the average after ``step`` optimisation steps (1-based).

    Parameters
    ----------
    step : int
        Steps taken, the current one included.
    tail : float
        Share of the steps so far the average covers.

    Returns
    -------
    float
        ``x / (1 + x)`` with ``x = tail * (step - 1)``: 0 at the first step (the average
        starts at the weights).

    Examples
    --------
    >>> tail_decay(1) < 0.1 < tail_decay(100) < 0.95 < tail_decay(1000)
    True
    >>> round(1 / (1 - tail_decay(1000)))  # the last ~100 of 1000 steps
    101
    """
    x = tail * max(0, int(step) - 1)
    return x / (1.0 + x)


class WeightAverage:
    """The averaged copy of a network (see the module docstring).

    Parameters
    ----------
    net : torch.nn.Module
        The network being trained (not a DDP or compiled wrapper); the average starts
        at its weights.
    tail : float
        Share of the steps so far that the average covers.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> avg = WeightAverage(net)
    >>> with torch.no_grad():
    ...     _ = net.weight.add_(1.0)
    >>> avg.update(net, step=1)  # the first step copies
    >>> bool(torch.equal(avg.module.weight, net.weight))
    True
    """

    def __init__(self, net: torch.nn.Module, tail: float = TAIL) -> None:
        self.module = copy.deepcopy(net).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.tail = float(tail)

    def _tensors(self, net: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple]]:
        mine = self.module.state_dict(keep_vars=True)
        theirs = net.state_dict(keep_vars=True)
        avg_f, src_f, other = [], [], []
        for k, v in mine.items():
            w = theirs[k].detach()
            if v.dtype.is_floating_point:
                avg_f.append(v.data if isinstance(v, torch.nn.Parameter) else v)
                src_f.append(w)
            else:
                other.append((v, w))
        return avg_f, src_f, other

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        """Fold ``net``'s weights after optimisation step ``step`` (1-based) into the average.

        Parameters
        ----------
        net : torch.nn.Module
            The trained network (same architecture).
        step : int
            Steps taken, this one included.
        """
        d = tail_decay(step, self.tail)
        avg_f, src_f, other = self._tensors(net)
        if avg_f:
            torch._foreach_lerp_(avg_f, src_f, 1.0 - d)
        for v, w in other:  # integer buffers (BatchNorm's batch counter): the latest value
            v.copy_(w)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights (a state dict of the network)."""
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the average (``--resume``)."""
        self.module.load_state_dict(state)
