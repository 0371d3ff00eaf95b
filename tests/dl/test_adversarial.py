"""--adversarial: the SegAN-style critic trains with the network, is clipped, and resumes exactly."""
from __future__ import annotations

import json

import pytest
import torch

from medseg.errors import ConfigError
from medseg.io import load_dataset
from medseg.methods.dl import train_unet
from medseg.testing import make_dataset
from medseg.train.adversarial import AdversarialTerm
from medseg.train.config import TrainConfig

TINY = dict(folds=2, fold="0", epochs=2, iters_per_epoch=3, patch_size=(32, 32), batch_size=2, channels=(8, 16, 32),
            workers=0, compile="off", progress=False, adversarial=True)


def test_critic_learns_to_tell_and_is_clipped():
    torch.manual_seed(0)
    adv = AdversarialTerm(dims=3, in_channels=1, n_classes=3, lr=1e-2, weight=0.5, seed=0)
    x = torch.rand(2, 1, 16, 16, 16)
    y = torch.randint(0, 3, (2, 16, 16, 16))
    wrong = torch.randn(2, 3, 16, 16, 16)
    first = adv.critic_step(x, wrong, y, None)
    for _ in range(10):
        last = adv.critic_step(x, wrong, y, None)
    assert last > first  # the critic maximises the distance between fake and real
    assert all(float(p.detach().abs().max()) <= adv.clip + 1e-7 for p in adv.critic.parameters())
    # a perfect segmentation is at distance 0
    perfect = torch.nn.functional.one_hot(y, 3).movedim(-1, 1).float() * 50
    assert adv.segmentor_term(x, perfect, y, None).item() < 1e-6


def test_adversarial_training_runs_and_resumes_exactly(tmp_path):
    data = load_dataset(make_dataset(tmp_path / "data", n=6, shape=(48, 48), seed=0))
    info = train_unet(data, tmp_path / "full", TrainConfig(**TINY))
    assert info["train_options"]["adversarial"] is True
    log = json.loads((tmp_path / "full" / "fold_0" / "log.json").read_text())
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log["history"])

    def stop(step):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_unet(data, tmp_path / "cut", TrainConfig(**TINY), step_callback=stop)
    state = torch.load(tmp_path / "cut" / "fold_0" / "train_state.pt", weights_only=True)
    assert state["step"] == 3 and "critic" in state["adversarial"]
    train_unet(data, tmp_path / "cut", TrainConfig(**{**TINY, "resume": True}))
    a = torch.load(tmp_path / "full" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_bad_weight_refused(tmp_path):
    data = load_dataset(make_dataset(tmp_path / "data", n=6, shape=(48, 48), seed=0))
    with pytest.raises(ConfigError, match="--adversarial-weight"):
        train_unet(data, tmp_path / "m", TrainConfig(**{**TINY, "adversarial_weight": -1.0}))
    assert not (tmp_path / "m").exists()
