"""Adversarial training (``--adversarial``): a SegAN-style critic on (image, segmentation) pairs.

Xue et al. (SegAN, Neuroinformatics 2018) give the segmentation network a critic that looks
at the image masked by a segmentation: ``image * p_k`` for each foreground class ``k``, once
with the network's softmax ``p`` and once with the true labels. The critic's layers extract
features at several scales, and the *multi-scale L1 distance* between the two sets of
features is

- minimised by the segmentation network (added to its Dice+CE loss with
  ``--adversarial-weight``), so its masks must look like true masks at every scale: shape,
  context and texture inside, not only voxel overlap;
- maximised by the critic, whose weights are clipped to a small range after each step
  (as in SegAN), which keeps the game stable: no discriminator logits to saturate.

Inside a region of interest only the ROI counts (the mask multiplies both inputs).

Examples
--------
>>> import torch
>>> adv = AdversarialTerm(dims=2, in_channels=1, n_classes=2, lr=1e-3, weight=0.1, seed=0)
>>> x, y = torch.rand(2, 1, 32, 32), torch.randint(0, 2, (2, 32, 32))
>>> logits = torch.randn(2, 2, 32, 32, requires_grad=True)
>>> adv.segmentor_term(x, logits, y, None).item() > 0
True
>>> adv.critic_step(x, logits.detach(), y, None) > 0
True
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdversarialTerm", "Critic"]


class Critic(nn.Module):
    """Strided convolutions whose every output is a feature scale (SegAN's critic, smaller).

    Parameters
    ----------
    dims : int
        2 or 3.
    in_channels : int
        Image channels times foreground classes.
    widths : tuple of int
        Feature maps of each stride-2 layer.
    """

    def __init__(self, dims: int, in_channels: int, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        norm = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
        layers, c = [], in_channels
        for i, w in enumerate(widths):
            parts: list[nn.Module] = [conv(c, w, 4 if dims == 2 else 3, stride=2, padding=1)]
            if i:
                parts.append(norm(w, affine=True))
            parts.append(nn.LeakyReLU(0.2))
            layers.append(nn.Sequential(*parts))
            c = w
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input and each layer's features.

        Parameters
        ----------
        x : torch.Tensor
            ``(N, C, *spatial)``.

        Returns
        -------
        list of torch.Tensor
        """
        feats = [x]
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class AdversarialTerm:
    """The critic, its optimiser and the two losses of the adversarial game.

    Parameters
    ----------
    dims, in_channels, n_classes : int
        Of the segmentation problem.
    lr : float
        The critic's learning rate (Adam, betas 0.5/0.999 as GANs use).
    weight : float
        Weight of the adversarial term in the segmentation loss.
    clip : float
        The critic's weights are clipped to ``[-clip, clip]`` after each step.
    seed : int
        Initialisation of the critic.
    device : str or torch.device
    """

    def __init__(self, *, dims: int, in_channels: int, n_classes: int, lr: float, weight: float,
                 clip: float = 0.05, seed: int = 0, device: str | torch.device = "cpu") -> None:
        gen = torch.random.fork_rng(devices=[])
        with gen:
            torch.manual_seed(int(seed) + 104729)
            self.critic = Critic(dims, in_channels * (n_classes - 1)).to(device)
        with torch.no_grad():  # the game starts inside the clipped set
            for p in self.critic.parameters():
                p.clamp_(-clip, clip)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.999))
        self.weight = float(weight)
        self.clip = float(clip)
        self.n_classes = int(n_classes)

    def _masked(self, x: torch.Tensor, seg: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x * seg_k`` for each foreground class ``k`` (channels: image channel major)."""
        fg = seg[:, 1:]
        if mask is not None:
            fg = fg * mask.unsqueeze(1).to(fg.dtype)
        out = x.unsqueeze(2) * fg.unsqueeze(1)  # (N, C, K-1, *spatial)
        return out.flatten(1, 2)

    def _distance(self, x: torch.Tensor, prob: torch.Tensor, target: torch.Tensor,
                  mask: torch.Tensor | None) -> torch.Tensor:
        onehot = F.one_hot(target.long(), self.n_classes).movedim(-1, 1).to(prob.dtype)
        fake = self.critic(self._masked(x, prob, mask))
        real = self.critic(self._masked(x, onehot, mask))
        return torch.stack([(a - b).abs().mean() for a, b in zip(fake, real)]).mean()

    def segmentor_term(self, x: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                       mask: torch.Tensor | None) -> torch.Tensor:
        """The weighted multi-scale L1 term the segmentation network minimises.

        Parameters
        ----------
        x : torch.Tensor
            Images ``(N, C, *spatial)``.
        logits : torch.Tensor
            The network's output ``(N, K, *spatial)``.
        target : torch.Tensor
            Labels ``(N, *spatial)``.
        mask : torch.Tensor or None
            ROI ``(N, *spatial)``.

        Returns
        -------
        torch.Tensor
            A scalar with gradient.
        """
        return self.weight * self._distance(x.float(), torch.softmax(logits.float(), 1), target, mask)

    def critic_step(self, x: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                    mask: torch.Tensor | None) -> float:
        """One critic update (it maximises the distance), then weight clipping.

        Parameters
        ----------
        x, logits, target, mask : torch.Tensor
            As in `segmentor_term`; ``logits`` detached.

        Returns
        -------
        float
            The distance before the update.
        """
        self.opt.zero_grad(set_to_none=True)
        d = self._distance(x.float(), torch.softmax(logits.detach().float(), 1), target, mask)
        (-d).backward()
        self.opt.step()
        with torch.no_grad():
            for p in self.critic.parameters():
                p.clamp_(-self.clip, self.clip)
        return float(d.detach())

    def state_dict(self) -> dict[str, Any]:
        """The critic's and its optimiser's state (for ``--resume``).

        Returns
        -------
        dict
        """
        return {"critic": self.critic.state_dict(), "critic_opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`.

        Parameters
        ----------
        state : dict
        """
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["critic_opt"])
