"""Multimodal deep learning: early/late fusion, per-channel normalisation, channel checks at predict."""
import json

import numpy as np
import pytest
import torch

from medseg.cli.main import main
from medseg.dl.network import build_net
from medseg.dl.plan import Plan, plan_from_dict
from medseg.errors import ConfigError, InputError
from medseg.image import Image, same_grid
from medseg.io import load_dataset, read_image, write_image
from medseg.methods.base import load_model
from medseg.methods.dl import train_unet
from medseg.nets.fusion import LateFusionUNet
from medseg.testing import disc_phantom
from medseg.train import TrainConfig
from medseg.train.planner import make_plan

FAST = dict(progress=False, workers=0, channels=(4, 8, 16), iters_per_epoch=3, folds=1, batch_size=2)


def _write_modalities(root, dims, n=3):
    """``images/MR/`` on a fine grid, ``images/CT/`` on a coarser, shifted one; labels on the MR grid."""
    shape = (32, 32) if dims == 2 else (16, 24, 24)
    for i in range(n):
        img, lab = disc_phantom(shape, seed=i)
        mr = Image(img.array.astype(np.float32), (1.0,) * dims)
        half = tuple(s // 2 for s in shape)
        ct_arr = 1000.0 * img.array[tuple(slice(0, None, 2) for _ in shape)].astype(np.float32) - 500.0
        ct = Image(ct_arr[tuple(slice(0, h) for h in half)], (2.0,) * dims, (0.5,) * dims)
        write_image(mr, root / "images" / "MR" / f"c{i}.nii.gz")
        write_image(ct, root / "images" / "CT" / f"c{i}.nii.gz")
        write_image(Image(lab.array.astype(np.uint8), (1.0,) * dims), root / "labels" / f"c{i}.nii.gz")
    return root


@pytest.fixture(scope="module")
def late2d(tmp_path_factory):
    data = _write_modalities(tmp_path_factory.mktemp("mm2") / "data", 2)
    out = tmp_path_factory.mktemp("lm2") / "model"
    info = train_unet(load_dataset(data), out, TrainConfig(epochs=1, fusion="late", **FAST))
    return data, out, info


def test_late_fusion_net_has_one_encoder_per_modality():
    net = LateFusionUNet(2, 3, 2, (4, 8, 16))
    assert len(net.encoders) == 3
    a, b = (dict(e.named_parameters()) for e in net.encoders[:2])
    assert a.keys() == b.keys() and all(a[k] is not b[k] for k in a)  # same architecture, separate weights
    for dims, size in ((2, (24, 40)), (3, (8, 16, 16))):
        net = build_net(Plan(dims=dims, in_channels=2, channels=(4, 8, 16), fusion="late")).eval()
        assert isinstance(net, LateFusionUNet)
        with torch.no_grad():
            assert net(torch.zeros((1, 2) + size)).shape == (1, 2) + size
    assert not isinstance(build_net(Plan(dims=2, in_channels=2, channels=(4, 8, 16))), LateFusionUNet)


def test_plan_records_fusion_channels_and_per_channel_normalisation():
    fp = {"dims": 2, "n_cases": 2, "shapes": [[32, 32]] * 2, "spacings": [[1.0, 1.0]] * 2, "n_channels": 2,
          "declared_modality": ["CT", "T1"], "fg_stats": [[-100.0, 300.0, 50.0, 80.0], [0.0, 1.0, 0.5, 0.2]],
          "class_counts": {"0": 900, "1": 100}, "label_names": {}, "has_roi": False, "reference": "T1"}
    plan = make_plan(fp, overrides={"fusion": "late"}, measure=False)
    assert plan.fusion == "late" and plan.channel_names == ("CT", "T1") and plan.reference == "T1"
    assert plan.normalisation == ("ct", "zscore") and plan.ct_stats == ((-100.0, 300.0, 50.0, 80.0), ())
    assert plan_from_dict(json.loads(json.dumps(plan.to_json()))) == plan
    with pytest.raises(ConfigError, match="--fusion must be early or late"):
        make_plan(fp, overrides={"fusion": "middle"}, measure=False)
    with pytest.raises(ConfigError, match="--fusion late needs at least two modalities"):
        make_plan({**fp, "n_channels": 1, "declared_modality": ["T1"], "fg_stats": fp["fg_stats"][:1]},
                  overrides={"fusion": "late"}, measure=False)
    with pytest.raises(ConfigError, match="does not combine with --net dynunet"):
        make_plan(fp, overrides={"fusion": "late", "net": "dynunet"}, measure=False)
    # a plan written before these fields existed still loads: early fusion, names unknown
    old = {k: v for k, v in plan.to_json().items() if k not in ("fusion", "channel_names", "reference")}
    assert plan_from_dict(old).fusion == "early" and plan_from_dict(old).channel_names == ()


def test_late_fusion_trains_and_predicts_2d(late2d, tmp_path):
    data, out, info = late2d
    plan = plan_from_dict(json.loads((out / "plan.json").read_text()))
    assert plan.fusion == "late" and plan.in_channels == 2 and plan.channel_names == ("CT", "MR")
    assert plan.normalisation == ("ct", "zscore") and len(plan.ct_stats[0]) == 4 and plan.ct_stats[1] == ()
    assert info["plan"]["fusion"] == "late"
    seg = load_model(out, {"tta": False})
    ds = load_dataset(data)
    img = ds.load_image(ds.cases[0])
    lab = seg(img)
    assert lab.shape == img.shape == (32, 32) and same_grid(lab, img)
    # prediction on the modality folders writes each case on its reference (MR) grid
    code = main(["predict", str(out), str(data / "images"), str(tmp_path / "pred"), "--no-tta"])
    assert code == 0
    pred = read_image(tmp_path / "pred" / "c1.nii.gz")
    assert pred.shape == (32, 32) and pred.spacing == (1.0, 1.0)


def test_predict_refuses_other_modalities(late2d, tmp_path, capsys):
    _, out, _ = late2d
    seg = load_model(out, {"tta": False})
    arr = np.zeros((2, 32, 32), np.float32)
    with pytest.raises(InputError, match=r"missing CT; unexpected PET"):
        seg(Image(arr, (1.0, 1.0), meta={"channel_names": ["PET", "MR"]}))
    with pytest.raises(InputError, match=r"channel order differs: trained on CT, MR; got MR, CT"):
        seg(Image(arr, (1.0, 1.0), meta={"channel_names": ["MR", "CT"]}))
    with pytest.raises(InputError, match=r"expects 2 channel\(s\) \(CT, MR\); this image has 1"):
        seg(Image(arr[0], (1.0, 1.0)))
    assert seg(Image(arr, (1.0, 1.0))).shape == (32, 32)  # unnamed channels: only their number is checked
    # the command line: modality folders named differently from training
    other = tmp_path / "other"
    for name in ("PET", "MR"):
        write_image(Image(arr[0], (1.0, 1.0)), other / name / "x.nii.gz")
    assert main(["predict", str(out), str(other), str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "missing CT; unexpected PET" in err and "Traceback" not in err
    assert not (tmp_path / "p").exists()


def test_late_fusion_resumes_and_exports(late2d, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from medseg.dl.network import load_fold_net
    from medseg.infer.export import export_onnx

    data, out, _ = late2d
    onnx_path = export_onnx(out, tmp_path / "late.onnx", fold=0)
    plan = plan_from_dict(json.loads((out / "plan.json").read_text()))
    net = load_fold_net(out / "fold_0", plan, "cpu", "checkpoint_last.pt")
    x = np.random.default_rng(0).normal(size=(1, 2, 32, 48)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_fusion_survives_resume(tmp_path):
    data = _write_modalities(tmp_path / "data", 2, n=2)

    class Stop(Exception):
        pass

    def stop(step):
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        train_unet(load_dataset(data), tmp_path / "m", TrainConfig(epochs=2, fusion="late", **FAST), step_callback=stop)
    info = train_unet(load_dataset(data), tmp_path / "m", TrainConfig(epochs=2, resume=True, **FAST))
    assert info["plan"]["fusion"] == "late"
    assert json.loads((tmp_path / "m" / "fold_0" / "log.json").read_text())


def test_late_fusion_3d(tmp_path):
    data = _write_modalities(tmp_path / "data", 3, n=2)
    out = tmp_path / "model"
    cfg = TrainConfig(epochs=1, fusion="late", patch_size=(16, 16, 16), **FAST)
    info = train_unet(load_dataset(data), out, cfg)
    assert info["plan"]["fusion"] == "late" and info["plan"]["dims"] == 3
    seg = load_model(out, {"tta": False})
    ds = load_dataset(data)
    img = ds.load_image(ds.cases[1])
    lab = seg(img)
    assert lab.shape == img.shape == (16, 24, 24) and img.meta["reference"] == "MR"


def test_cli_train_late_fusion_with_a_reference_then_predict_on_it(tmp_path):
    data = _write_modalities(tmp_path / "data", 2, n=2)
    out = tmp_path / "model"
    code = main(["train", str(data), "--method", "unet", "--out", str(out), "--fusion", "late", "--reference", "CT",
                 "--epochs", "1", "--iters-per-epoch", "2", "--folds", "1", "--channels", "4,8,16",
                 "--batch-size", "2", "--workers", "0", "--no-progress"])
    assert code == 0
    plan = plan_from_dict(json.loads((out / "plan.json").read_text()))
    assert plan.fusion == "late" and plan.reference == "CT"
    # prediction resamples onto the model's reference (CT: 2 mm) without being told
    assert main(["predict", str(out), str(data / "images"), str(tmp_path / "pred"), "--no-tta"]) == 0
    pred = read_image(tmp_path / "pred" / "c0.nii.gz")
    assert pred.shape == (16, 16) and pred.spacing == (2.0, 2.0)


def test_early_fusion_is_the_default(tmp_path):
    data = _write_modalities(tmp_path / "data", 2, n=2)
    info = train_unet(load_dataset(data), tmp_path / "m", TrainConfig(epochs=1, **FAST))
    assert info["plan"]["fusion"] == "early" and info["plan"]["channel_names"] == ["CT", "MR"]
    assert not isinstance(build_net(plan_from_dict(info["plan"])), LateFusionUNet)
