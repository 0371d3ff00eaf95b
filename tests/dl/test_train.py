import collections
import json
import shutil

import numpy as np
import pytest
import torch

from medseg.errors import ConfigError, InputError, ModelError
from medseg.io import load_dataset
from medseg.methods.base import load_model
from medseg.methods.dl import train_unet as train_model
from medseg.testing import disc_phantom, head_phantom, make_dataset
from medseg.train import TrainConfig

FAST = dict(progress=False, workers=1, channels=(8, 16, 32), iters_per_epoch=10)


class StopTraining(Exception):
    """Raised from a step callback to simulate an interruption (the run dies mid-epoch)."""


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum())


@pytest.fixture(scope="module")
def disc2d(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("d2") / "data", kind="disc", n=4, shape=(64, 64))


@pytest.fixture(scope="module")
def model2d(disc2d, tmp_path_factory):
    out = tmp_path_factory.mktemp("m2") / "model"
    cfg = TrainConfig(epochs=6, folds=2, fold="all", batch_size=4, **FAST)
    info = train_model(load_dataset(disc2d), out, cfg)
    return out, info


def test_smoke_2d_train_predict(model2d):
    out, info = model2d
    assert (out / "model.json").is_file() and (out / "plan.json").is_file()
    assert info["folds"] == [0, 1]
    for k in (0, 1):
        for f in ("checkpoint_best.pt", "checkpoint_last.pt", "train_state.pt", "log.json"):
            assert (out / f"fold_{k}" / f).is_file()
        # weights load without unpickling arbitrary objects
        torch.load(out / f"fold_{k}" / "checkpoint_best.pt", weights_only=True)
    assert any((out / "fold_0" / "tb").iterdir())
    seg = load_model(out)
    img, truth = disc_phantom((64, 64), seed=99)
    lab = seg(img)
    assert lab.shape == img.shape and lab.array.dtype == np.uint8 and lab.spacing == img.spacing
    fg = truth.array > 0
    chance = fg.mean()
    assert _dice(lab.array > 0, fg) > max(0.5, 2 * chance)
    prob = seg.predict_proba(img)
    assert prob.array.shape == (2, 64, 64)
    np.testing.assert_allclose(prob.array.sum(0), 1.0, atol=1e-4)


def test_smoke_3d_train_predict(tmp_path):
    root = make_dataset(tmp_path / "data", kind="head", n=3, shape=(16, 24, 24))
    cfg = TrainConfig(epochs=4, folds=3, batch_size=2, patch_size=(16, 24, 24), **FAST)
    train_model(load_dataset(root), tmp_path / "m", cfg)
    seg = load_model(tmp_path / "m")
    seg = type(seg).load(tmp_path / "m", seg.params.__class__(tta=False))
    img, truth = head_phantom((16, 24, 24), seed=7)
    lab = seg(img)
    assert lab.shape == img.shape
    fg = truth.array > 0
    assert _dice(lab.array > 0, fg) > 2 * fg.mean() * (1 - fg.mean()) + 0.1


def test_resume_is_bit_identical(disc2d, tmp_path):
    ds = load_dataset(disc2d)
    cfg = TrainConfig(epochs=3, folds=2, batch_size=2, **FAST)
    train_model(ds, tmp_path / "full", cfg)

    def kill(step):
        if step == 17:  # mid-epoch: the run dies between checkpoints
            raise StopTraining

    with pytest.raises(StopTraining):
        train_model(ds, tmp_path / "cut", cfg, step_callback=kill)
    assert not (tmp_path / "cut" / "model.json").exists()
    state = torch.load(tmp_path / "cut" / "fold_0" / "train_state.pt", weights_only=True)
    assert state["step"] == 10
    train_model(ds, tmp_path / "cut", TrainConfig(resume=True, epochs=3, folds=2, batch_size=2, **FAST))
    a = torch.load(tmp_path / "full" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa = torch.load(tmp_path / "full" / "fold_0" / "train_state.pt", weights_only=True)
    sb = torch.load(tmp_path / "cut" / "fold_0" / "train_state.pt", weights_only=True)
    assert [h["loss"] for h in sa["history"]] == [h["loss"] for h in sb["history"]]


def test_training_predicts_through_the_validator_it_is_given(disc2d, tmp_path):
    """medseg.train never imports medseg.infer: each validation and the final choice of the
    inference settings go through the Validator it receives (here inference's, recorded)."""
    from medseg.dl.validation import Validator
    from medseg.infer.validation import PredictorValidator
    from medseg.train.engine import train_model as engine_train_model

    calls = []

    class Recording(PredictorValidator):
        def probabilities(self, net, plan, images, *, device):
            calls.append(("probabilities", len(images)))
            return super().probabilities(net, plan, images, device=device)

        def choose_inference(self, folds, plan, *, device):
            folds = list(folds)
            calls.append(("choose", [len(cases) for _, cases in folds]))
            return super().choose_inference(folds, plan, device=device)

    assert isinstance(Recording(), Validator)
    cfg = TrainConfig(epochs=2, folds=2, fold="0", batch_size=2, **dict(FAST, iters_per_epoch=2))
    info = engine_train_model(load_dataset(disc2d), tmp_path / "m", cfg, validator=Recording())
    # the last: the held-out cases for the temperature
    assert calls == [("probabilities", 2), ("probabilities", 2), ("choose", [2]), ("probabilities", 2)]
    assert info["inference_window"] in ("patch", "image") and set(info["inference_window_val_dice"]) == {
        "patch", "image"}
    with pytest.raises(TypeError, match="validator"):  # no silent default: training cannot reach inference
        engine_train_model(load_dataset(disc2d), tmp_path / "n", cfg)
    assert not (tmp_path / "n").exists()


def test_compile_failure_falls_back_to_eager(disc2d, tmp_path, monkeypatch, caplog):
    """A compiler that fails at the first step (e.g. no C++ compiler) costs a warning, not the run."""
    calls = []

    class Broken(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            calls.append(x.shape)
            raise RuntimeError("InductorError: no working C++ compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda net, **kw: Broken(net))
    cfg = TrainConfig(epochs=1, folds=2, batch_size=2, compile="on", **FAST)
    with caplog.at_level("WARNING"):
        train_model(load_dataset(disc2d), tmp_path / "m", cfg)
    assert len(calls) == 1  # tried once, then the plain network
    assert "torch.compile failed (RuntimeError: InductorError: no working C++ compiler found)" in caplog.text
    log = json.loads((tmp_path / "m" / "fold_0" / "log.json").read_text())
    assert log["steps"] == 10 and log["compiled"] is False
    assert np.isfinite(log["history"][-1]["loss"])


def test_compile_auto_follows_planned_time():
    from types import SimpleNamespace

    from medseg.train.loop import _use_compile

    plan = SimpleNamespace(step_seconds=0.1)
    auto, off, on = (SimpleNamespace(compile=m) for m in ("auto", "off", "on"))
    assert _use_compile(auto, plan, 20 * 60.0, None)          # a 20-minute budget
    assert not _use_compile(auto, plan, 60.0, None)           # the demo's minute
    assert _use_compile(auto, plan, None, 50 * 250)           # default 50 epochs: ~21 min
    assert not _use_compile(auto, plan, None, 30)             # a few steps
    assert not _use_compile(off, plan, 3600.0, None) and _use_compile(on, plan, 1.0, None)


def test_bad_compile_value(disc2d, tmp_path):
    from medseg.errors import ConfigError

    with pytest.raises(ConfigError, match="--compile must be auto, on or off"):
        train_model(load_dataset(disc2d), tmp_path / "m", TrainConfig(epochs=1, folds=2, compile="yes", **FAST))
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_compiled_resume_is_bit_identical(disc2d, tmp_path):
    """torch.compile (real compiler; ~1 min on 2 cores): a killed, resumed run recompiles and
    ends with the same weights as an uninterrupted compiled run."""
    ds = load_dataset(disc2d)
    cfg = TrainConfig(epochs=2, folds=2, batch_size=2, compile="on", **FAST)
    train_model(ds, tmp_path / "full", cfg)
    log = json.loads((tmp_path / "full" / "fold_0" / "log.json").read_text())
    assert log["compiled"] is True

    def kill(step):
        if step == 13:
            raise StopTraining

    with pytest.raises(StopTraining):
        train_model(ds, tmp_path / "cut", cfg, step_callback=kill)
    train_model(ds, tmp_path / "cut", TrainConfig(resume=True, epochs=2, folds=2, batch_size=2, compile="on", **FAST))
    a = torch.load(tmp_path / "full" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "fold_0" / "checkpoint_last.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---------------------------------------------------------------------------- bad input
def test_too_few_cases_for_folds(disc2d, tmp_path):
    with pytest.raises(InputError, match="too few for 5-fold"):
        train_model(load_dataset(disc2d), tmp_path / "m", TrainConfig(epochs=1, **FAST))


def test_missing_labels(tmp_path):
    root = make_dataset(tmp_path / "d", kind="disc", n=3, shape=(32, 32))
    (root / "labels" / "case_001.tif").unlink()
    with pytest.raises(InputError):
        ds = load_dataset(root)
        train_model(ds, tmp_path / "m", TrainConfig(epochs=1, folds=2, **FAST))


def test_a_class_only_in_held_out_cases_is_warned_about(tmp_path, caplog):
    import tifffile

    from medseg.train.engine import make_splits

    root = make_dataset(tmp_path / "d", kind="disc", n=4, shape=(32, 32))
    splits = make_splits(["case_000", "case_001", "case_002", "case_003"], 2, 0)
    k = next(i for i, s in enumerate(splits) if "case_002" in s["val"])
    f = root / "labels" / "case_002.tif"
    lab = tifffile.imread(f)
    tifffile.imwrite(f, np.where(lab > 0, 2, 0).astype(lab.dtype))  # label 2 in this case only
    with caplog.at_level("WARNING", logger="medseg.train.engine"):
        train_model(load_dataset(root), tmp_path / "m", TrainConfig(epochs=1, folds=2, fold=str(k),
                                                                     **dict(FAST, iters_per_epoch=2)))
    assert f"fold {k}: label 2 (class2) occurs in none of its 2 training cases, only in held-out case(s) " \
           "case_002" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="medseg.train.engine"):  # the other fold trains on it
        train_model(load_dataset(root), tmp_path / "m2", TrainConfig(epochs=1, folds=2, fold=str(1 - k),
                                                                      **dict(FAST, iters_per_epoch=2)))
    assert "occurs in none" not in caplog.text


def test_nan_in_a_training_image_is_refused_and_nothing_is_written(tmp_path):
    root = make_dataset(tmp_path / "d", kind="disc", n=4, shape=(32, 32), layout="npy")
    im = np.load(root / "images.npy").astype(np.float32)
    im[2, 3, 3] = np.nan
    np.save(root / "images.npy", im)
    with pytest.raises(InputError, match="case '2': the image contains 1 NaN"):
        train_model(load_dataset(tmp_path / "d"), tmp_path / "m", TrainConfig(epochs=1, folds=2, **FAST))
    assert not (tmp_path / "m").exists()


def test_bad_patch_size_or_budget_leaves_no_folder(disc2d, tmp_path):
    ds = load_dataset(disc2d)
    for cfg in (TrainConfig(epochs=1, folds=2, patch_size=(18, 18), **FAST),  # FAST: 3 levels, divisor 4
                TrainConfig(epochs=1, folds=2, patch_size=(4, 4), **FAST),
                TrainConfig(epochs=1, folds=2, patch_size=(16, 16, 16), **FAST)):
        with pytest.raises(ConfigError, match="--patch-size"):
            train_model(ds, tmp_path / "m", cfg)
        assert not (tmp_path / "m").exists()
    for budget in (float("nan"), float("inf"), 0.0):
        with pytest.raises(ConfigError, match="--time-budget"):
            train_model(ds, tmp_path / "m", TrainConfig(time_budget=budget, folds=2))
    # an empty folder the user made stays, empty
    (tmp_path / "e").mkdir()
    with pytest.raises(ConfigError):
        train_model(ds, tmp_path / "e", TrainConfig(epochs=1, folds=2, patch_size=(18, 18), **FAST))
    assert (tmp_path / "e").is_dir() and not any((tmp_path / "e").iterdir())


def test_images_smaller_than_the_network_divisor_train_and_predict(tmp_path):
    rng = np.random.default_rng(0)
    lab = np.zeros((4, 6, 6), np.uint8)
    lab[:, 1:4, 1:4] = 1
    im = (rng.normal(size=(4, 6, 6)) + 3 * lab).astype(np.float32)
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "d" / "images.npy", im)
    np.save(tmp_path / "d" / "labels.npy", lab)
    cfg = TrainConfig(epochs=1, folds=2, **{**FAST, "channels": None})  # the planned 4 levels: divisor 8
    info = train_model(load_dataset(tmp_path / "d"), tmp_path / "m", cfg)
    assert list(info["plan"]["patch_size"]) == [16, 16]  # padded up to a patch the network can halve
    pred = load_model(tmp_path / "m")(im[0])
    assert pred.shape == (6, 6)


def test_existing_output_needs_resume(disc2d, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("x")
    with pytest.raises(InputError, match="--resume"):
        train_model(load_dataset(disc2d), tmp_path / "m", TrainConfig(epochs=1, folds=2, **FAST))


def test_model_rejects_wrong_channels_and_dims(model2d):
    seg = load_model(model2d[0])
    from medseg.image import Image

    with pytest.raises(InputError, match="channel"):
        seg(Image(np.zeros((3, 64, 64), np.float32), spacing=(1.0, 1.0)))
    with pytest.raises(InputError, match="3D"):
        seg(Image(np.zeros((8, 64, 64), np.float32)))


def test_corrupt_checkpoint_and_incomplete_model(model2d, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(model2d[0], out)
    ck = out / "fold_1" / "checkpoint_last.pt"
    truncated = ck.read_bytes()[: len(ck.read_bytes()) // 2]
    for corrupt in (lambda: ck.write_bytes(truncated),
                    lambda: ck.write_bytes(np.random.default_rng(0).bytes(1000)),  # not even a zip archive
                    lambda: torch.save({"a": collections.Counter("ab")}, ck)):  # arbitrary objects: never unpickled
        corrupt()
        with pytest.raises(ModelError, match="corrupt") as e:
            load_model(out)(disc_phantom((64, 64), seed=1)[0])
        assert len(str(e.value)) < 300 and "weights_only" not in str(e.value)  # one short line, no bad advice
    (out / "model.json").unlink()
    with pytest.raises(ModelError, match="model.json"):
        load_model(out)
    bad = tmp_path / "bad"
    shutil.copytree(model2d[0], bad)
    plan = json.loads((bad / "plan.json").read_text())
    info = json.loads((bad / "model.json").read_text())
    info["plan"]["channels"] = [4, 8, 16]
    (bad / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="do not match"):
        load_model(bad)(disc_phantom((64, 64), seed=1)[0])
    assert plan["channels"] == [8, 16, 32]


def test_onnx_export_matches_torch(model2d, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from medseg.dl.network import load_fold_net
    from medseg.dl.plan import plan_from_dict
    from medseg.infer.export import export_onnx

    out = export_onnx(model2d[0], tmp_path / "net.onnx", fold=1)
    plan = plan_from_dict(json.loads((model2d[0] / "plan.json").read_text()))
    net = load_fold_net(model2d[0] / "fold_1", plan, "cpu", "checkpoint_last.pt")
    x = np.random.default_rng(0).normal(size=(2, 1, 64, 96)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_training_chooses_the_inference_window_on_validation(model2d):
    from medseg.infer.validation import WINDOW_TOLERANCE
    from medseg.methods.dl import UNetMethod, UNetParams

    out, info = model2d
    assert json.loads((out / "model.json").read_text())["inference_window"] == info["inference_window"]
    scores = info["inference_window_val_dice"]
    assert set(scores) == {"patch", "image"}
    if tuple(info["plan"]["patch_size"]) == (64, 64):  # patch = image: both windows are the same
        assert scores["image"] == scores["patch"] and info["inference_window"] == "patch"
    else:
        expect = "image" if scores["image"] >= scores["patch"] - WINDOW_TOLERANCE else "patch"
        assert info["inference_window"] == expect
    assert load_model(out).predictor().window == info["inference_window"]
    assert UNetMethod.load(out, UNetParams(window="patch")).predictor().window == "patch"


def test_window_choice_with_patches_smaller_than_the_images(disc2d, tmp_path):
    from medseg.infer.validation import WINDOW_TOLERANCE

    cfg = TrainConfig(epochs=2, folds=2, fold="0", batch_size=4, patch_size=(32, 32), **FAST)
    info = train_model(load_dataset(disc2d), tmp_path / "m", cfg)
    scores = info["inference_window_val_dice"]
    expect = "image" if scores["image"] >= scores["patch"] - WINDOW_TOLERANCE else "patch"
    assert info["inference_window"] == expect
    img, _ = disc_phantom((64, 64), seed=5)
    seg = load_model(tmp_path / "m")
    assert seg.predictor().window_size((64, 64)) == ([64, 64] if expect == "image" else [32, 32])
    assert seg(img).shape == img.shape


def test_cli_export_writes_onnx_and_refuses_bad_input(model2d, tmp_path, capsys):
    pytest.importorskip("onnx")
    from medseg.cli.main import main

    out = tmp_path / "net.onnx"
    assert main(["export", str(model2d[0]), str(out), "--fold", "1"]) == 0
    assert out.is_file() and out.stat().st_size > 1000
    assert main(["export", str(model2d[0]), str(tmp_path / "x.onnx"), "--fold", "7"]) == 2
    assert "fold 7 was not trained" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
    assert main(["export", str(tmp_path / "nothing"), str(tmp_path / "y.onnx")]) == 2
    assert main(["export", str(model2d[0]), str(tmp_path / "y.txt")]) == 2
    assert not list(tmp_path.glob("y*"))


def test_cli_prediction_options(model2d, tmp_path, capsys):
    from medseg.cli.main import main
    from medseg.io import write_image

    img, _ = disc_phantom((64, 64), seed=5)
    write_image(img, tmp_path / "x.nii.gz")
    model = str(model2d[0])
    # unet's prediction options are flags of predict and of segment --model
    assert main(["predict", model, str(tmp_path / "x.nii.gz"), str(tmp_path / "a.nii.gz"),
                 "--no-tta", "--use-folds", "1", "--overlap", "0.25", "--checkpoint", "best"]) == 0
    assert main(["segment", str(tmp_path / "x.nii.gz"), str(tmp_path / "b.nii.gz"), "--model", model,
                 "--window", "patch"]) == 0
    one = load_model(model2d[0], {"tta": False, "use_folds": "1", "overlap": 0.25, "checkpoint": "best"})
    from medseg.io import read_image

    np.testing.assert_array_equal(read_image(tmp_path / "a.nii.gz").array, one(img).array)
    capsys.readouterr()
    for argv, needle in ((["--tta-typo"], "did you mean 'tta'"), (["--use-folds", "7"], "--use-folds 7"),
                         (["--use-folds", "x"], "--use-folds must be"), (["--overlap", "1.5"], "overlap")):
        assert main(["predict", model, str(tmp_path / "x.nii.gz"), str(tmp_path / "c.nii.gz"), *argv]) == 2
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err
        assert not (tmp_path / "c.nii.gz").exists()
