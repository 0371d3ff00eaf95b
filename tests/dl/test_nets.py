import pytest
import torch

from medseg.errors import ConfigError
from medseg.nets import NETS, create_net


@pytest.mark.parametrize("name", ["unet", "dynunet", "classic-unet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_nets_shapes(name, dims):
    net = create_net(name, spatial_dims=dims, in_channels=2, out_channels=3, channels=(4, 8, 16))
    x = torch.randn((2, 2) + (16,) * dims)
    net.eval()
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 3) + (16,) * dims


def test_dynunet_deep_supervision_in_training():
    net = create_net("dynunet", spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16, 32))
    net.train()
    y = net(torch.randn(1, 1, 32, 32))
    assert y.shape[:3] == (1, 2, 2) and y.shape[-2:] == (32, 32)


def test_classic_unet_topology_and_softmax_head():
    net = create_net("classic-unet", spatial_dims=2, in_channels=1, out_channels=2, softmax_head=True)
    widths = [b[0].out_channels for b in net.down]
    assert widths == [32, 64, 128, 128]
    net.eval()
    with torch.no_grad():
        p = net(torch.randn(1, 1, 24, 24))
    assert torch.allclose(p.sum(1), torch.ones(1, 24, 24), atol=1e-5)


def test_unknown_net_suggests():
    with pytest.raises(ConfigError, match="did you mean"):
        create_net("unett", spatial_dims=2, in_channels=1, out_channels=2)
    assert {"unet", "dynunet", "classic-unet"} <= set(NETS.names())


def test_bad_net_args():
    with pytest.raises(ConfigError):
        create_net("unet", spatial_dims=4, in_channels=1, out_channels=2)
    with pytest.raises(ConfigError):
        create_net("unet", spatial_dims=2, in_channels=1, out_channels=1)
