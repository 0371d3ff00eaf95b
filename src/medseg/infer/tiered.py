"""Compile tiering: a network run eagerly that switches to ``torch.compile`` per window shape
once that pays (`TieredNet`).

Examples
--------
>>> import torch
>>> net = TieredNet(torch.nn.Conv2d(1, 2, 3, padding=1), "off")
>>> net(torch.zeros(4, 1, 8, 8)).shape
torch.Size([4, 2, 8, 8])
"""
from __future__ import annotations

import logging
import time

import torch

log = logging.getLogger(__name__)

__all__ = ["COMPILE_AFTER_S", "TieredNet"]

COMPILE_AFTER_S = 60.0
"""Under ``compile="auto"`` a window shape is compiled once this many seconds of eager forward
passes have been spent on it. Compiling a U-Net takes 10-20 s on a 2-core CPU the first time and
~5 s once torch's on-disk compile cache has it, and then saves 25-35 % of every pass: a job long
enough to get here loses at most a third of its time to the compiler, and one of a few minutes
(a large volume, a folder) gains it back."""


class TieredNet:
    """A network run eagerly that switches to ``torch.compile`` per input shape.

    ``mode`` "on" compiles each window shape on first sight, "auto" once the eager passes on
    that shape took `COMPILE_AFTER_S` seconds, "off" never. Shapes are keyed without
    the batch axis: a smaller last batch is zero-padded to the compiled batch (samples are
    independent: instance/batch statistics are per window in eval mode) — or run eagerly
    when under two thirds full, where padding would cost more than the compiled speed-up
    saves — and a larger one is run in chunks, so each window shape compiles once. Where compiling fails (no C++
    compiler, an operator the compiler does not support) one warning is logged and the
    network runs eagerly from then on. Compiled results differ from eager ones by float
    rounding only (~1e-5 on logits); ``compile="off"`` keeps results bit-reproducible. The
    compiled graph holds a frozen copy of the weights: a network changed after its first
    compiled pass needs a new predictor.

    Parameters
    ----------
    net : torch.nn.Module
        In eval mode; called like it, ``(N, C, *P) -> (N, K, *P)``.
    mode : str
        ``"on"``, ``"auto"`` or ``"off"``.
    """

    def __init__(self, net: torch.nn.Module, mode: str) -> None:
        self.net = net
        self.mode = mode
        self.eager_s: dict[tuple[int, ...], float] = {}
        self.batch: dict[tuple[int, ...], int] = {}  # compiled shapes -> their batch size
        self.compile_s: dict[tuple[int, ...], float] = {}
        self._compiled = None
        self._failed = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape[1:])
        bs = self.batch.get(key)
        if bs is not None:
            n = x.shape[0]
            if n == bs:
                return self._run(x)
            if 3 * n < 2 * bs:  # a short last batch: padding would cost more than compiling saves
                return self.net(x)
            if n < bs:
                pad = x.new_zeros((bs - n,) + key)
                return self._run(torch.cat([x, pad]))[:n]
            return torch.cat([self(x[i:i + bs]) for i in range(0, n, bs)])
        t = time.perf_counter()
        y = self.net(x)
        if self.mode != "off" and not self._failed:
            self.eager_s[key] = self.eager_s.get(key, 0.0) + time.perf_counter() - t
            if self.mode == "on" or self.eager_s[key] >= COMPILE_AFTER_S:
                self._compile(x)
        return y

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled network; compilations it triggers freeze the weights into the graph
        (Inductor's ``freezing``: constant folding and prepacked oneDNN convolutions — without
        it a single 3D window ran at uncompiled single-sample speed, 70-80 vs 20 ms)."""
        import torch._inductor.config as inductor_config  # the compiler: loaded only when used

        with inductor_config.patch(freezing=True):
            return self._compiled(x)

    def _compile(self, x: torch.Tensor) -> None:
        key = tuple(x.shape[1:])
        t = time.perf_counter()
        try:
            if self._compiled is None:
                self._compiled = torch.compile(self.net, dynamic=False)
            self._run(x)  # compiles now, so that a failure shows here and not mid-image
        except Exception as e:  # noqa: BLE001 - any failure means: stay eager
            self._failed = True
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.warning("torch.compile is not available for inference here (%s); running uncompiled", msg)
            return
        self.compile_s[key] = time.perf_counter() - t
        self.batch[key] = int(x.shape[0])
        log.info("network compiled for %s windows of %s in %.0f s", x.shape[0], "x".join(map(str, key[1:])),
                 self.compile_s[key])
