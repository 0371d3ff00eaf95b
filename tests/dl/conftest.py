import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")


@pytest.fixture(autouse=True, scope="session")
def _threads():
    """Keep the shared CPU calm and results reproducible."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _tiny(dims=2):
    from medseg.dl.plan import Plan
    from medseg.nets import create_net

    plan = Plan(dims=dims, in_channels=1, n_classes=2, patch_size=(32,) * dims, channels=(4, 8, 16),
                num_res_units=1, mirror_axes=tuple(range(dims)))
    torch.manual_seed(0)
    net = create_net("unet", spatial_dims=dims, in_channels=1, out_channels=2, channels=(4, 8, 16),
                     num_res_units=1, norm="instance")
    return plan, net


@pytest.fixture
def tiny():
    """``tiny(dims=2) -> (plan, net)``: a seeded 4-8-16 U-Net and its plan, for predictor tests."""
    return _tiny
