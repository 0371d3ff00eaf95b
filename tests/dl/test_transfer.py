"""--init-from (same classes, other classes, --label-map, --adapt-channels), refusals, and the few-shot schedule."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.dl.network import build_net
from medseg.dl.plan import plan_from_dict
from medseg.errors import ConfigError, ModelError
from medseg.io import load_dataset
from medseg.methods.dl import train_unet
from medseg.train.config import TrainConfig
from medseg.train.engine import _initialiser
from medseg.train.loop import _optimizer
from medseg.train.transfer import few_shot_schedule, parse_label_map, transfer_state

TINY = dict(folds=1, epochs=1, iters_per_epoch=2, patch_size=(32, 32), batch_size=2, channels=(8, 16, 32),
            workers=0, compile="off", progress=False)


def _npy(root: Path, n: int, classes: int = 2, channels: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:40, :40]
    imgs, labs = [], []
    for _ in range(n):
        lab = np.zeros((40, 40), np.uint8)
        for k in range(1, classes):
            cy, cx = rng.integers(8, 32, 2)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < 30] = k
        img = lab * 50.0 + rng.normal(0, 10, lab.shape)
        imgs.append(np.stack([img] * channels, -1) if channels > 1 else img)
        labs.append(lab)
    root.mkdir(parents=True)
    np.save(root / "images.npy", np.stack(imgs).astype(np.float32))
    np.save(root / "labels.npy", np.stack(labs))
    return root


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src")
    train_unet(load_dataset(_npy(root / "data", 6)), root / "model", TrainConfig(**TINY))
    return root / "model"


def _weights(model: Path) -> dict[str, torch.Tensor]:
    return torch.load(model / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]


def _plan(model: Path):
    return plan_from_dict(json.loads((model / "plan.json").read_text()))


def test_same_classes_starts_from_every_weight(source, tmp_path, caplog):
    cfg = TrainConfig(init_from=str(source), **{**TINY, "channels": None})
    with caplog.at_level(logging.INFO, logger="medseg"):
        info = train_unet(load_dataset(_npy(tmp_path / "data", 12, seed=1)), tmp_path / "m", cfg)
    plan = _plan(tmp_path / "m")
    assert list(plan.channels) == [8, 16, 32] and plan.net == _plan(source).net  # the old network
    assert info["init_from"]["model"] == str(source) and "few_shot" not in info  # 12 cases: not few-shot
    old = _weights(source)
    assert f"{len(old)} tensors copied" in caplog.text
    # before training, the new network is the old one, tensor for tensor
    net = build_net(plan)
    assert _initialiser(cfg, plan, 0)(net) == set(old)
    assert all(torch.equal(net.state_dict()[k], old[k]) for k in old)


def test_other_classes_new_head_or_label_map(source, tmp_path):
    data = load_dataset(_npy(tmp_path / "data", 6, classes=3))
    plan = plan_from_dict({**_plan(source).to_json(), "n_classes": 3,
                           "class_names": {"0": "background", "1": "a", "2": "b"}})
    old = _weights(source)
    net = build_net(plan)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    state, rep = transfer_state(old, fresh, old_classes=2, new_classes=3, old_channels=1, new_channels=1)
    assert rep.reinitialised >= 1 and rep.copied == len(old) - rep.reinitialised
    heads = [k for k in fresh if k in old and fresh[k].shape != old[k].shape]
    assert heads and all(torch.equal(state[k], fresh[k]) for k in heads)  # the output layer starts anew
    state, rep = transfer_state(old, fresh, old_classes=2, new_classes=3, old_channels=1, new_channels=1,
                                label_map={1: 1, 2: 1})
    assert rep.mapped == len(heads)
    for k in heads:  # every class axis (conv, transposed conv, norm): new 1 and 2 from old 1, 0 from 0
        if fresh[k].ndim == 1:
            assert torch.equal(state[k][1], old[k][1]) and torch.equal(state[k][2], old[k][1])
            assert torch.equal(state[k][0], old[k][0])
    k2 = next(k for k in heads if fresh[k].ndim == 4 and fresh[k].shape[0] == 3 and fresh[k].shape[1] == 3)
    assert torch.equal(state[k2][2, 2], old[k2][1, 1]) and torch.equal(state[k2][0, 2], old[k2][0, 1])
    # the axes found by building the network with one class more agree with the shapes
    from medseg.train.transfer import probe_axes

    ca, ia = probe_axes(lambda c, i: build_net(plan_from_dict({**plan.to_json(), "n_classes": c, "in_channels": i}))
                        .state_dict(), 3, 1)
    assert set(ca) == set(heads) and ia and all(ax == [1] for ax in ia.values())
    # through training: the label map is recorded
    info = train_unet(data, tmp_path / "m", TrainConfig(init_from=str(source), label_map="1:1,2:1",
                                                        **{**TINY, "channels": None}))
    assert info["init_from"]["label_map"] == {"1": 1, "2": 1} or info["init_from"]["label_map"] == {1: 1, 2: 1}
    assert info["plan"]["n_classes"] == 3


def test_refusals(source, tmp_path):
    data = load_dataset(_npy(tmp_path / "rgb", 6, channels=3))
    with pytest.raises(ConfigError, match="takes 1 channel.*--adapt-channels"):
        train_unet(data, tmp_path / "a", TrainConfig(init_from=str(source), **{**TINY, "channels": None}))
    assert not (tmp_path / "a").exists()
    info = train_unet(data, tmp_path / "b", TrainConfig(init_from=str(source), adapt_channels=True,
                                                        **{**TINY, "channels": None}))
    assert info["plan"]["in_channels"] == 3 and info["init_from"]["adapt_channels"]
    grey = load_dataset(_npy(tmp_path / "grey", 6))
    with pytest.raises(ConfigError, match="the model's net is"):
        train_unet(grey, tmp_path / "c", TrainConfig(init_from=str(source), net="classic-unet",
                                                     **{**TINY, "channels": None}))
    with pytest.raises(ConfigError, match="has no class 5"):
        train_unet(grey, tmp_path / "d", TrainConfig(init_from=str(source), label_map="1:5",
                                                     **{**TINY, "channels": None}))
    with pytest.raises(ModelError, match="no such model folder"):
        train_unet(grey, tmp_path / "e", TrainConfig(init_from=str(tmp_path / "nothing"), **TINY))
    with pytest.raises(ConfigError, match="NEW:OLD"):
        parse_label_map("1-2")
    with pytest.raises(ConfigError, match="background"):
        parse_label_map("0:1")


def test_few_shot_schedule(source, tmp_path, caplog):
    assert few_shot_schedule(3, from_weights=False, epochs_given=False) is None
    assert few_shot_schedule(6, from_weights=True, epochs_given=False) is None
    fs = few_shot_schedule(2, from_weights=True, epochs_given=False)
    assert fs is not None and fs.epochs == 10 and fs.freeze_fraction > 0
    with caplog.at_level(logging.INFO, logger="medseg"):
        info = train_unet(load_dataset(_npy(tmp_path / "data", 3)), tmp_path / "m",
                          TrainConfig(init_from=str(source), **{**TINY, "channels": None}))
    assert "few-shot schedule" in caplog.text
    assert info["few_shot"]["freeze_fraction"] == fs.freeze_fraction
    assert info["plan"]["lr"] == pytest.approx(_plan(source).lr * fs.lr_factor)


def test_frozen_group_does_not_move_while_frozen(source):
    plan = _plan(source)
    net = build_net(plan)
    names = {n for n, p in net.named_parameters() if p.ndim > 1}
    opt = _optimizer(plan, net, names)
    frozen = [g for g in opt.param_groups if g["medseg_frozen"]][0]
    frozen["lr"] = 0.0
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    net(torch.randn(2, 1, 32, 32)).sum().backward()
    opt.step()
    after = dict(net.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in names)
    assert any(not torch.equal(before[n], after[n]) for n in before if n not in names)


def test_pretrained_through_training(source, tmp_path, caplog):
    f = tmp_path / "weights.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _weights(source).items()}}, f)
    with caplog.at_level(logging.INFO, logger="medseg"):
        info = train_unet(load_dataset(_npy(tmp_path / "data", 3)), tmp_path / "m",
                          TrainConfig(pretrained=str(f), **TINY))
    assert f"pretrained: {len(_weights(source))} tensors matched" in caplog.text
    assert "few_shot" in info  # 3 cases from earlier weights
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ConfigError, match="matches"):
        train_unet(load_dataset(_npy(tmp_path / "d2", 3)), tmp_path / "m2",
                   TrainConfig(pretrained=str(tmp_path / "bad.pt"), **TINY))
    assert not (tmp_path / "m2").exists()
    with pytest.raises(ConfigError, match="not both"):
        train_unet(load_dataset(_npy(tmp_path / "d3", 3)), tmp_path / "m3",
                   TrainConfig(pretrained=str(f), init_from=str(source), **TINY))


def test_optimizer_choices(source):
    import dataclasses

    plan = _plan(source)
    net = build_net(plan)
    assert type(_optimizer(dataclasses.replace(plan, optimizer="adam"), net)) is torch.optim.Adam
    assert type(_optimizer(dataclasses.replace(plan, optimizer="adamw"), net)) is torch.optim.AdamW
    with pytest.raises(ConfigError, match="adamw, adam or sgd"):
        _optimizer(dataclasses.replace(plan, optimizer="rmsprop"), net)
