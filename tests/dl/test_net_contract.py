"""One contract over every --net entry, in each dimensionality it declares: forward shapes and
gradients, two training steps through the real engine, save/load round trip, exact resume,
ONNX export parity with `medseg predict MODEL_DIR` (1e-4 in probabilities), and the refusals
(wrong dimensionality, a patch that does not divide, an unusable --pretrained file)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg.dl.network import load_fold_net
from medseg.errors import ConfigError, ModelError
from medseg.io import load_dataset
from medseg.methods.dl import UNetMethod, train_unet
from medseg.nets import NETS, create_net, net_divisor, net_info, nets_for
from medseg.nets.pretrained import load_pretrained
from medseg.testing import disc_phantom, head_phantom, make_dataset
from medseg.train import TrainConfig
from medseg.train.planner import make_plan

CH = (4, 8, 16)
CASES = [(n, d) for n in NETS.names() for d in net_info(n).dims]
#: train/resume/export cases in the default suite (each at most ~4 s on a 2-core CPU; one per
#: family of networks); the others (2-24 s each: the ResNet-34 and EfficientNet encoders, unetr,
#: unet++, attention-unet, the 3D MONAI networks, 3D r2unet) are marked slow
FAST = {("unet", 2), ("unet", 3), ("classic-unet", 2), ("segresnet", 2), ("r2unet", 2), ("dynunet", 3),
        ("swin-unetr", 2), ("smp-unet:mobilenet_v2", 2), ("unet-convlstm", 3)}
#: chosen by --fusion late (two or more modalities), not by --net: forward and plan checks only
NOT_A_NET_CHOICE = {"late-fusion-unet"}


def _patch(name, dims):
    div = net_divisor(name, CH)
    if dims == 2:
        return (max(32, 2 * div), max(32, div))
    return (max(16, 2 * div), max(16, div), max(16, div))


def _fp(dims, shape):
    return {"dims": dims, "n_cases": 4, "shapes": [list(shape)] * 4, "spacings": [[1.0] * dims] * 4,
            "n_channels": 1, "declared_modality": ["MRI"], "fg_stats": [[0.0, 1.0, 0.5, 0.2]],
            "class_counts": {"0": 1000, "1": 50}, "label_names": {}, "has_roi": False}


def _marks(name, dims):
    return [] if (name, dims) in FAST else [pytest.mark.slow]


@pytest.mark.parametrize("name, dims", CASES)
def test_forward_shapes_and_gradients(name, dims):
    patch = _patch(name, dims)
    cin = 2 if name == "late-fusion-unet" else 1
    torch.manual_seed(0)
    net = create_net(name, spatial_dims=dims, in_channels=cin, out_channels=3, channels=CH, num_res_units=1,
                     patch_size=patch, deep_supervision=False)
    x = torch.randn((2, cin) + patch)
    net.train()
    y = net(x)
    assert y.shape == (2, 3) + patch
    y.square().mean().backward()
    first = next(p for p in net.parameters() if p.ndim >= 3)
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert net.eval()(x[:1]).shape == (1, 3) + patch


@pytest.mark.parametrize("name, dims", [pytest.param(n, d, marks=_marks(n, d)) for n, d in CASES
                                        if n not in NOT_A_NET_CHOICE])
def test_train_save_load_resume_and_export_parity(name, dims, tmp_path):
    patch = _patch(name, dims)
    shape = tuple(p + 8 for p in patch)
    root = make_dataset(tmp_path / "data", kind="disc" if dims == 2 else "head", n=2, shape=shape)
    ds = load_dataset(root)
    cfg = dict(epochs=2, iters_per_epoch=1, folds=1, batch_size=2, channels=CH, patch_size=patch, net=name,
               progress=False, workers=0, compile="off")
    info = train_unet(ds, tmp_path / "full", TrainConfig(**cfg))
    assert info["plan"]["net"] == name and tuple(info["plan"]["patch_size"]) == patch

    # save/load round trip: the fold's network comes back with the checkpoint's weights
    ck = torch.load(tmp_path / "full" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    net = load_fold_net(tmp_path / "full" / "fold_0", UNetMethod.load(tmp_path / "full").plan)
    assert all(torch.equal(ck[k], v) for k, v in net.state_dict().items())

    # resume: a run killed after its first step and resumed ends with the same weights
    class Stop(Exception):
        pass

    def kill(step):
        if step == 2:
            raise Stop

    with pytest.raises(Stop):
        train_unet(ds, tmp_path / "cut", TrainConfig(**cfg), step_callback=kill)
    train_unet(ds, tmp_path / "cut", TrainConfig(**cfg, resume=True))
    resumed = torch.load(tmp_path / "cut" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    assert resumed.keys() == ck.keys()
    assert all(torch.equal(ck[k], resumed[k]) for k in ck), "resume is not exact"

    # export parity with the model folder's predictor
    pytest.importorskip("onnxruntime")
    from medseg.infer.export import OnnxModel, export_onnx, sidecar_path

    out = tmp_path / "net.onnx"
    if net_info(name).no_onnx:
        with pytest.raises(ModelError, match="cannot be exported to ONNX"):
            export_onnx(tmp_path / "full", out)
        assert not out.exists()
        return
    export_onnx(tmp_path / "full", out)
    assert out.is_file() and sidecar_path(out).is_file()
    img = disc_phantom(shape, seed=9)[0] if dims == 2 else head_phantom(shape, seed=9)[0]
    want = UNetMethod.load(tmp_path / "full", {"compile": "off"}).predict_proba(img).array
    got = OnnxModel(out).predict_proba(img).array
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= 1e-4


@pytest.mark.parametrize("name", [n for n in NETS.names() if n not in NOT_A_NET_CHOICE])
def test_plan_refuses_wrong_dims_and_patch(name):
    info = net_info(name)
    for dims in (2, 3):
        fp = _fp(dims, (64,) * dims)
        if dims in info.dims:
            div = net_divisor(name, (0,) * 4)
            plan = make_plan(fp, overrides={"net": name}, measure=False)
            assert plan.net == name and all(p % div == 0 for p in plan.patch_size)
            bad = (div + 1,) * dims if div > 1 else None
            if bad:
                with pytest.raises(ConfigError, match=f"multiple of\\s+{div}"):
                    make_plan(fp, overrides={"net": name, "patch_size": bad}, measure=False)
        else:
            with pytest.raises(ConfigError) as e:
                make_plan(fp, overrides={"net": name}, measure=False)
            msg = str(e.value)
            assert f"--net {name} is" in msg and "-only" in msg and "\n" not in msg
            assert all(n in msg for n in nets_for(dims))


def test_fixed_input_networks_use_patch_windows(tiny):
    from medseg.dl.plan import Plan
    from medseg.infer.predictor import Predictor

    plan = Plan(dims=2, patch_size=(32, 32), channels=CH, net="unetr")
    net = create_net("unetr", spatial_dims=2, in_channels=1, out_channels=2, channels=CH, patch_size=(32, 32))
    pred = Predictor([net], plan, tta=False, device="cpu", window="image")
    assert pred.window_size((70, 50)) == [32, 32]
    assert pred.probabilities(np.zeros((1, 70, 50), np.float32)).shape == (2, 70, 50)
    plan_u, net_u = tiny(2)  # other networks keep whole-image windows
    assert Predictor([net_u], plan_u, tta=False, device="cpu", window="image").window_size((70, 50)) == [72, 52]


def test_unetr_needs_its_input_size():
    with pytest.raises(ConfigError, match="multiples of 16"):
        create_net("unetr", spatial_dims=2, in_channels=1, out_channels=2, channels=CH, patch_size=(40, 32))


# ---------------------------------------------------------------- --pretrained
def _torchvision_resnet34_state(seed=1):
    """A ResNet-34 state dict in torchvision's naming (with its classifier), from another network."""
    torch.manual_seed(seed)
    donor = create_net("smp-unet:resnet34", spatial_dims=2, in_channels=3, out_channels=2, channels=CH)
    state = {k[len("encoder."):]: v for k, v in donor.state_dict().items() if k.startswith("encoder.")}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return state


def test_pretrained_loads_torchvision_layout_and_adapts_the_first_conv(tmp_path):
    state = _torchvision_resnet34_state()
    f = tmp_path / "resnet34.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, f)  # DataParallel, wrapped
    torch.manual_seed(2)
    net = create_net("smp-unet:resnet34", spatial_dims=2, in_channels=1, out_channels=2, channels=CH)
    dec_before = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith("encoder.")}
    rep = load_pretrained(net, f)
    assert rep.summary().startswith("pretrained: 216 tensors matched, 0 missing, 0 with another shape")
    assert rep.adapted == ["conv1.weight"] and rep.unused == 2  # fc.* is not part of the encoder
    own = net.state_dict()
    assert torch.equal(own["encoder.conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))
    assert all(torch.equal(own[f"encoder.{k}"], v) for k, v in state.items() if k not in ("conv1.weight", "fc.weight",
                                                                                          "fc.bias"))
    assert all(torch.equal(own[k], v) for k, v in dec_before.items())  # the decoder keeps its own start


def test_pretrained_smp_layout_and_shape_mismatch(tmp_path):
    torch.manual_seed(3)
    src = create_net("smp-unet:mobilenet_v2", spatial_dims=2, in_channels=3, out_channels=4, channels=CH)
    f = tmp_path / "smp.pt"
    sd = src.state_dict()
    sd["encoder.features.18.1.weight"] = torch.ones(7)  # another shape: reported, not loaded
    del sd["encoder.features.17.conv.3.bias"]            # missing: reported
    torch.save({"model": sd}, f)
    net = create_net("smp-unet:mobilenet_v2", spatial_dims=2, in_channels=3, out_channels=2, channels=CH)
    rep = load_pretrained(net, f)
    assert rep.shape == ["features.18.1.weight"] and rep.missing == ["features.17.conv.3.bias"]
    assert len(rep.matched) == len(net.encoder.state_dict()) - 2
    assert torch.equal(net.state_dict()["encoder.features.3.conv.1.0.weight"], sd["encoder.features.3.conv.1.0.weight"])


def test_pretrained_file_that_matches_nothing_is_an_error(tmp_path):
    f = tmp_path / "other.pt"
    torch.save({"some.layer.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}, f)
    net = create_net("smp-unet:efficientnet-b0", spatial_dims=2, in_channels=1, out_channels=2, channels=CH)
    with pytest.raises(ConfigError, match="none of its 2 tensors matches the encoder"):
        load_pretrained(net, f)
    bad = tmp_path / "bad.pt"
    bad.write_text("not a torch file")
    from medseg.errors import InputError

    with pytest.raises(InputError, match="not a torch state dict"):
        load_pretrained(net, bad)
