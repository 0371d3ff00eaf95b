"""The oneDNN copy of a 3D network works on networks that keep tensors from their last training pass."""
from __future__ import annotations

import torch

from medseg.infer.onednn import onednn_conv3d
from medseg.nets import create_net


def test_copy_of_a_trained_dynunet_with_deep_supervision_heads():
    net = create_net("dynunet", spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32)).train()
    net(torch.randn(1, 1, 16, 16, 16)).sum().backward()  # DynUNet keeps its heads' outputs in an attribute
    copied = onednn_conv3d(net)
    out = copied.eval()(torch.randn(1, 1, 16, 16, 16))
    assert out.shape == (1, 2, 16, 16, 16)
    assert net.training  # the original is left as it was
