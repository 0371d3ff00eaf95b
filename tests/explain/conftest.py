import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

FAST = dict(progress=False, workers=1, channels=(8, 16, 32), batch_size=4)


@pytest.fixture(autouse=True, scope="session")
def _threads():
    """Keep the shared CPU calm and results reproducible."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def unet_model(tmp_path_factory):
    """A tiny 2D unet model folder trained for a few seconds on disc phantoms (one fold)."""
    from medseg.io import load_dataset
    from medseg.methods.dl import train_unet
    from medseg.testing import make_dataset
    from medseg.train import TrainConfig

    root = tmp_path_factory.mktemp("explain_unet")
    data = make_dataset(root / "data", kind="disc", n=4, shape=(48, 48))
    train_unet(load_dataset(data), root / "model", TrainConfig(epochs=8, folds=1, iters_per_epoch=15, **FAST))
    return root / "model", data
