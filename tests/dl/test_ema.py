"""The running weight average (``--ema on``): the arithmetic, what is shipped, exact resume."""
import pytest
import torch

from medseg.errors import ConfigError
from medseg.io import load_dataset
from medseg.methods.base import load_model
from medseg.methods.dl import train_unet as train_model
from medseg.train import TrainConfig
from medseg.train.ema import WeightAverage, tail_decay

from .test_train import FAST, StopTraining, disc2d  # noqa: F401 - the fixture is used by name


def test_the_average_follows_its_formula():
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    avg = WeightAverage(net)
    want = {k: v.clone() for k, v in net.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    for step in range(1, 40):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=gen))
            net[1].num_batches_tracked.add_(1)
        avg.update(net, step)
        d = tail_decay(step)
        for k, v in net.state_dict().items():
            want[k] = d * want[k] + (1 - d) * v if v.dtype.is_floating_point else v.clone()
    got = avg.state_dict()
    for k, v in want.items():
        assert torch.allclose(got[k].float(), v.float(), atol=1e-5), k
    assert int(got["1.num_batches_tracked"]) == 39
    # the average is its own copy: the network's parameters are not touched, no gradients
    assert not any(p.requires_grad for p in avg.module.parameters())
    assert not torch.equal(got["0.weight"], net.state_dict()["0.weight"])


def test_tail_decay_covers_a_tenth_of_the_steps():
    assert tail_decay(1) == 0.0
    for steps in (100, 1000, 10000):
        window = 1 / (1 - tail_decay(steps))
        assert 0.09 * steps < window < 0.11 * steps + 1


def test_ema_ships_the_average_and_resumes_bit_identically(disc2d, tmp_path):  # noqa: F811
    ds = load_dataset(disc2d)
    cfg = TrainConfig(epochs=3, folds=2, batch_size=2, ema="on", **FAST)
    train_model(ds, tmp_path / "full", cfg)
    fold = tmp_path / "full" / "fold_0"
    last = torch.load(fold / "checkpoint_last.pt", weights_only=True)["model"]
    state = torch.load(fold / "train_state.pt", weights_only=True)
    assert state["raw_model"].keys() == last.keys()
    assert any(not torch.equal(last[k], state["raw_model"][k]) for k in last)  # the average, not the raw weights
    seg = load_model(tmp_path / "full")
    img = ds.load_image(ds.cases[0])
    assert seg(img).array.shape == img.shape

    def kill(step):
        if step == 17:
            raise StopTraining

    with pytest.raises(StopTraining):
        train_model(ds, tmp_path / "cut", cfg, step_callback=kill)
    with pytest.raises(ConfigError, match="averaged its weights; resume with --ema on"):
        train_model(ds, tmp_path / "cut", TrainConfig(resume=True, epochs=3, folds=2, batch_size=2, **FAST))
    train_model(ds, tmp_path / "cut", TrainConfig(resume=True, epochs=3, folds=2, batch_size=2, ema="on", **FAST))
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        a = torch.load(fold / name, weights_only=True)["model"]
        b = torch.load(tmp_path / "cut" / "fold_0" / name, weights_only=True)["model"]
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    with pytest.raises(ConfigError, match="--ema must be on or off"):
        train_model(ds, tmp_path / "bad", TrainConfig(epochs=1, folds=2, ema="yes", **FAST))
