import json

import numpy as np
import pytest

from medseg.errors import ConfigError, InputError, ModelError
from medseg.image import Image
from medseg.methods.base import METHODS, get_method, load_model
from medseg.ml import fit_predict_scribbles
from medseg.testing import disc_phantom, fundus_phantom, make_dataset

ML = ["random-forest", "extra-trees", "gradient-boosting", "svm", "decision-tree", "knn", "mlp"]
# small, fast settings for the tests (defaults are for real data)
FAST = {"random-forest": {"n_estimators": 15}, "extra-trees": {"n_estimators": 15},
        "gradient-boosting": {"max_iter": 5}, "svm": {"n_components": 100}, "decision-tree": {},
        "knn": {}, "mlp": {"max_iter": 60}}
FEATS = {"features": ("intensity", "gaussian", "hessian"), "sigmas": (1.0, 2.0)}


def dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def make(name, **kw):
    return get_method(name)(**{**FEATS, **FAST[name], **kw})


def test_all_registered_with_contract():
    for name in ML:
        cls = get_method(name)
        assert name in METHODS.names()
        assert cls.family == "ml" and cls.trainable and cls.TrainParams is not None
        d = cls.describe()
        assert d["params"] and all(p["help"] for p in d["params"])


def test_each_method_class_builds_its_estimator():
    """Everything about a method name is on its class in medseg.ml: Params and the builder."""
    from medseg.ml import ML_METHODS

    assert [cls.name for cls in ML_METHODS] == ML
    for cls in ML_METHODS:
        assert cls.__module__ == "medseg.ml.classifiers" and get_method(cls.name) is cls
        est = cls.build_estimator(cls(**FEATS).params, 12, 0)
        assert hasattr(est, "predict_proba") and hasattr(est, "fit")
    forest = get_method("random-forest").build_estimator(get_method("random-forest")(n_estimators=7).params, 5, 3)
    assert forest.n_estimators == 7 and forest.random_state == 3


def test_interactive_takes_a_class_and_refuses_non_ml_names():
    from medseg.ml import KNN

    img, truth = disc_phantom((48, 48), seed=0)
    scr = np.zeros((48, 48), np.uint8)
    scr[::5, ::5] = truth.array[::5, ::5] + 1
    labels, _, model = fit_predict_scribbles(img, scr, method=KNN, sigmas=(1.0, 2.0))
    assert type(model) is KNN and labels.meta["method"] == "knn"
    assert dice(labels.array == 2, truth.array) > 0.9
    by_name = fit_predict_scribbles(img, scr, method="knn", sigmas=(1.0, 2.0))[0]
    np.testing.assert_array_equal(by_name.array, labels.array)
    with pytest.raises(InputError, match="not an ML pixel classifier"):
        fit_predict_scribbles(img, scr, method="otsu")
    with pytest.raises(InputError, match="did you mean 'random-forest'"):
        fit_predict_scribbles(img, scr, method="random-forrest")


@pytest.mark.parametrize("name", ML)
def test_fit_on_one_phantom_predict_another_2d(name):
    img, truth = disc_phantom((64, 64), seed=0)
    img2, truth2 = disc_phantom((64, 64), seed=1)
    seg = make(name).fit(img, truth)
    out = seg(img2)
    assert out.shape == img2.shape and out.array.dtype == np.uint8 and out.spacing == img2.spacing
    assert dice(out.array, truth2.array) > 0.9
    prob = seg.predict_proba(img2)
    assert prob.array.shape == (2, 64, 64)
    np.testing.assert_allclose(prob.array.sum(axis=0), 1, atol=1e-5)
    t = seg.threshold_ if seg.threshold_ is not None else 0.5
    assert 0 < t < 1
    np.testing.assert_array_equal((prob.array[1] >= t).astype(np.uint8), out.array)


@pytest.mark.parametrize("name", ["random-forest", "extra-trees"])
def test_fit_predict_3d(name):
    img, truth = disc_phantom((20, 32, 32), seed=0, spacing=(2.0, 1.0, 1.0))
    img2, truth2 = disc_phantom((20, 32, 32), seed=4, spacing=(2.0, 1.0, 1.0))
    seg = make(name).fit(img, truth, options=get_method(name).TrainParams(samples_per_image=4000))
    assert dice(seg(img2).array, truth2.array) > 0.8


def test_chunked_prediction_equals_whole():
    img, truth = disc_phantom((16, 32, 32), seed=0)
    seg = make("random-forest").fit(img, truth)
    whole = seg.predict_proba(img).array
    small = make("random-forest", max_memory_mb=0.3)
    small.__dict__.update({k: v for k, v in seg.__dict__.items() if k != "params"})
    small.feature_config_ = type(seg.feature_config_)(**{**seg.feature_config_.to_dict(), "max_memory_mb": 0.3})
    np.testing.assert_allclose(small.predict_proba(img).array, whole, atol=1e-6)
    roi = np.zeros(img.shape, np.uint8)
    roi[2:6, 4:20, 3:30] = 1  # some blocks hold no ROI voxel: skipped, background there
    part = small.predict_proba(img, roi=roi).array
    np.testing.assert_allclose(part, seg.predict_proba(img, roi=roi).array, atol=1e-6)
    bg = int(np.flatnonzero(seg.classes_ == 0)[0])
    assert (part[bg][roi == 0] == 1).all() and (np.delete(part, bg, 0)[:, roi == 0] == 0).all()


def test_rgb_with_roi():
    rgb, vessels, fov = fundus_phantom((96, 96), seed=0)
    lab = vessels.array.astype(np.uint8)
    seg = make("random-forest").fit(rgb, lab, rois=fov)
    out = seg.predict(rgb, roi=fov)
    assert out.array[fov.array == 0].max() == 0
    assert dice(out.array[fov.array > 0], lab[fov.array > 0]) > 0.6
    with pytest.raises(InputError, match="3-channel"):
        seg(rgb.channel(1))


def test_scribbles_ignore_value():
    img, truth = disc_phantom((64, 64), seed=0)
    scr = np.zeros((64, 64), np.uint8)  # 0 = unlabelled, 1 = background, 2 = object
    scr[::9, ::9] = truth.array[::9, ::9] + 1
    seg = make("random-forest").fit(img, scr, options=get_method("random-forest").TrainParams(ignore_label=0))
    assert seg.classes_.tolist() == [1, 2]
    out = seg(img).array
    assert set(np.unique(out)) <= {1, 2}
    assert dice(out == 2, truth.array) > 0.9
    # dense labels with 255 as ignore keep 0 as a class
    scr255 = np.full((64, 64), 255, np.uint8)
    scr255[::9, ::9] = truth.array[::9, ::9]
    seg2 = make("random-forest").fit(img, scr255, options=get_method("random-forest").TrainParams(ignore_label=255))
    assert seg2.classes_.tolist() == [0, 1]


def test_bad_training_data():
    img, truth = disc_phantom((32, 32), seed=0)
    tp = get_method("random-forest").TrainParams
    with pytest.raises(InputError, match="only class 0"):
        make("random-forest").fit(img, np.zeros((32, 32), np.uint8))
    with pytest.raises(InputError, match="no labelled pixel"):
        make("random-forest").fit(img, np.zeros((32, 32), np.uint8), options=tp(ignore_label=0))
    with pytest.raises(InputError, match="shape"):
        make("random-forest").fit(img, np.zeros((30, 32), np.uint8))
    with pytest.raises(InputError, match="integer"):
        make("random-forest").fit(img, np.full((32, 32), 0.5))
    with pytest.raises(ConfigError, match="not trained"):
        make("random-forest")(img)
    with pytest.raises(ConfigError, match="did you mean"):
        make("random-forest", features=("gausian",))


def test_save_load_identical_and_safe(tmp_path):
    img, truth = disc_phantom((48, 48), seed=0)
    img2, _ = disc_phantom((48, 48), seed=2)
    for name in ML:
        seg = make(name).fit(img, truth)
        d = seg.save(tmp_path / name)
        info = json.loads((d / "model.json").read_text())
        assert info["method"] == name and info["classes"] == [0, 1] and info["medseg_version"]
        assert info["feature_config"]["sigmas"] == [1.0, 2.0]
        back = load_model(d)
        assert type(back) is type(seg)
        np.testing.assert_array_equal(back.predict_proba(img2).array, seg.predict_proba(img2).array)
    assert not list(tmp_path.glob(".*tmp"))


def test_tampered_unsafe_and_newer_models_refused(tmp_path):
    import skops.io as sio

    img, truth = disc_phantom((32, 32), seed=0)
    d = make("random-forest").fit(img, truth).save(tmp_path / "m")
    # tampered estimator bytes
    raw = bytearray((d / "model.skops").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "model.skops").write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="checksum"):
        load_model(d)
    # a file holding a type outside the allow-list, even with a matching checksum
    import hashlib

    from sklearn.preprocessing import FunctionTransformer

    sio.dump(FunctionTransformer(func=eval), d / "model.skops")
    info = json.loads((d / "model.json").read_text())
    info["estimator_sha256"] = hashlib.sha256((d / "model.skops").read_bytes()).hexdigest()
    (d / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="allow-list"):
        load_model(d)
    # newer format
    info["format_version"] = 99
    (d / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match="newer"):
        load_model(d)


@pytest.mark.parametrize("key,value", [("reject_below", 5.0), ("reject_below", float("nan")), ("threshold", -0.1)])
def test_invalid_decision_bounds_refused(tmp_path, key, value):
    img, truth = disc_phantom((32, 32), seed=0)
    d = make("random-forest").fit(img, truth).save(tmp_path / "m")
    info = json.loads((d / "model.json").read_text())
    info[key] = value
    (d / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelError, match=f"{key} must be a probability"):
        load_model(d)


def test_ml_models_take_no_prediction_options(tmp_path, capsys):
    from medseg.cli.main import main
    from medseg.errors import ConfigError
    from medseg.io import write_image

    img, truth = disc_phantom((32, 32), seed=0)
    d = make("decision-tree").fit(img, truth).save(tmp_path / "m")
    with pytest.raises(ConfigError, match="take no prediction options"):
        load_model(d, {"sigmas": (1.0,)})
    write_image(img, tmp_path / "x.nii.gz")
    assert main(["predict", str(d), str(tmp_path / "x.nii.gz"), str(tmp_path / "y.nii.gz"), "--sigmas", "1"]) == 2
    assert "take no prediction options" in capsys.readouterr().err
    assert main(["predict", str(d), str(tmp_path / "x.nii.gz"), str(tmp_path / "y.nii.gz")]) == 0
    # the one runtime option: CPU cores, for every stage; the output is the same
    assert main(["predict", str(d), str(tmp_path / "x.nii.gz"), str(tmp_path / "z.nii.gz"), "--n-jobs", "1"]) == 0
    assert load_model(d, {"n_jobs": 1}).params.n_jobs == 1
    from medseg.io import read_label

    assert (read_label(tmp_path / "z.nii.gz").array == read_label(tmp_path / "y.nii.gz").array).all()


def test_channel_mismatch_at_prediction(tmp_path):
    img, truth = disc_phantom((32, 32), seed=0)
    seg = make("decision-tree").fit(img, truth)
    two = Image(np.stack([img.array, img.array]), (1.0, 1.0))
    with pytest.raises(InputError, match="1-channel"):
        seg.predict(two)
    with pytest.raises(InputError, match="2D"):
        seg.predict(disc_phantom((8, 32, 32))[0])


def test_train_and_predict_cli(tmp_path, capsys):
    from medseg.cli.main import main

    root = make_dataset(tmp_path / "ds", kind="disc", n=3)
    out = tmp_path / "model"
    rc = main(["train", str(root), "--method", "random-forest", "--out", str(out), "--n-estimators", "10",
               "--sigmas", "1,2", "--samples-per-image", "3000"])
    assert rc == 0 and (out / "model.json").is_file() and (out / "model.skops").is_file()
    info = json.loads((out / "model.json").read_text())
    assert info["params"]["n_estimators"] == 10 and info["train_options"]["samples_per_image"] == 3000
    imgs = sorted((root / "images").iterdir())
    rc = main(["predict", str(out), str(root / "images"), str(tmp_path / "pred")])
    assert rc == 0 and len(list((tmp_path / "pred").glob("*.tif"))) == len(imgs)
    from medseg.io import read_image, write_image

    write_image(read_image(imgs[0]), tmp_path / "one.nii.gz")
    rc = main(["predict", str(out), str(tmp_path / "one.nii.gz"), str(tmp_path / "p1"), "--probabilities"])
    assert rc == 0
    prob = read_image(tmp_path / "p1" / "one_prob.nii.gz")
    assert prob.n_channels == 2


def test_train_one_class_dataset_writes_nothing(tmp_path):
    from medseg.cli.main import main
    from medseg.io import write_image

    for i in range(2):
        img, _ = disc_phantom((32, 32), seed=i)
        write_image(img, tmp_path / "ds" / "images" / f"c{i}.npy")
        write_image(Image(np.zeros((32, 32), np.uint8)), tmp_path / "ds" / "labels" / f"c{i}.npy")
    out = tmp_path / "model"
    rc = main(["train", str(tmp_path / "ds"), "--method", "random-forest", "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model")]


def test_interactive_scribbles_fast_path():
    img, truth = disc_phantom((96, 96), seed=0)
    scr = np.zeros((96, 96), np.uint8)
    scr[::11, ::11] = truth.array[::11, ::11] + 1
    labels, prob, model = fit_predict_scribbles(img, scr, n_estimators=10, sigmas=(1.0, 2.0))
    assert dice(labels.array == 2, truth.array) > 0.9
    assert prob.array.shape == (2, 96, 96)
    np.testing.assert_array_equal(model.predict(img).array, labels.array)
    with pytest.raises(InputError, match="no labelled"):
        fit_predict_scribbles(img, np.zeros((96, 96), np.uint8))
    with pytest.raises(InputError, match="two classes"):
        fit_predict_scribbles(img, (scr > 0).astype(np.uint8))


@pytest.mark.slow
def test_interactive_512_under_2s():
    import time

    img, truth = disc_phantom((512, 512), seed=0)
    scr = np.zeros((512, 512), np.uint8)
    scr[::23, ::23] = truth.array[::23, ::23] + 1
    t = time.perf_counter()
    labels, _, _ = fit_predict_scribbles(img, scr)
    elapsed = time.perf_counter() - t
    assert dice(labels.array == 2, truth.array) > 0.9
    print(f"interactive 512^2: {elapsed:.2f} s")


def test_autocontext_stages_fit_save_load(tmp_path):
    import shutil

    data = [fundus_phantom((80, 80), seed=s) for s in range(4)]
    imgs = [d[0] for d in data]
    labs = [d[1].array.astype(np.uint8) for d in data]
    rois = [d[2] for d in data]
    test_img, test_lab, test_roi = fundus_phantom((80, 80), seed=9)
    seg = make("random-forest", autocontext=1).fit(imgs, labs, rois=rois)
    assert seg.context_ is not None and seg.context_.params.autocontext == 0 and seg.context_.context_ is None
    assert seg.n_channels_ == 4 and seg.context_.n_channels_ == 3  # RGB + the vessel probability
    assert seg.train_info_["autocontext"] == 1
    out = seg.predict(test_img, roi=test_roi)
    inside = test_roi.array > 0
    assert dice(out.array[inside], test_lab.array[inside]) > 0.6
    with pytest.raises(InputError, match="3-channel"):  # checked by the first stage
        seg(test_img.channel(0))
    d = seg.save(tmp_path / "ac")
    assert (d / "context" / "model.json").is_file()
    back = load_model(d)
    np.testing.assert_array_equal(back.predict_proba(test_img, roi=test_roi).array,
                                  seg.predict_proba(test_img, roi=test_roi).array)
    info = json.loads((d / "model.json").read_text())
    (d / "model.json").write_text(json.dumps({**info, "context": ".."}))  # pointing out of the folder
    with pytest.raises(ModelError, match="auto-context stage folder"):
        load_model(d)
    (d / "model.json").write_text(json.dumps(info))
    shutil.rmtree(d / "context")
    with pytest.raises(ModelError, match="auto-context stage folder"):
        load_model(d)


@pytest.mark.parametrize("stages", [1, 2])
def test_autocontext_shared_features_equal_per_stage_features(stages, monkeypatch):
    """The image's own features are computed once for all stages; the result must equal
    computing every stage's stack from scratch (block-wise path)."""
    from medseg.ml.segmenter import PixelClassifier

    data = [fundus_phantom((64, 72), seed=s) for s in range(3)]
    seg = make("random-forest", autocontext=stages, n_estimators=8).fit(
        [d[0] for d in data], [d[1].array.astype(np.uint8) for d in data], rois=[d[2] for d in data])
    img, _, roi = fundus_phantom((64, 72), seed=11)
    calls = []
    real = PixelClassifier._shared_rows
    monkeypatch.setattr(PixelClassifier, "_shared_rows", lambda self, im, m: calls.append(1) or real(self, im, m))
    shared = seg.predict_proba(img, roi=roi).array
    assert len(calls) == 1  # once for the whole chain of stages
    monkeypatch.setattr(PixelClassifier, "_shared_rows", lambda self, im, m: None)
    np.testing.assert_array_equal(shared, seg.predict_proba(img, roi=roi).array)
    # a memory bound too small for the whole stack: block-wise per stage, same result
    monkeypatch.setattr(PixelClassifier, "_shared_rows", real)
    import medseg.ml.prediction as pred

    monkeypatch.setattr(pred, "feature_blocks", lambda *a, **k: [None, None])
    np.testing.assert_array_equal(shared, seg.predict_proba(img, roi=roi).array)
    blockwise = seg.predict_proba(img).array  # without an ROI: every pixel
    monkeypatch.undo()
    np.testing.assert_array_equal(blockwise, seg.predict_proba(img).array)


def test_autocontext_default_for_forests_only():
    assert get_method("random-forest")().params.autocontext == 1
    assert get_method("extra-trees")().params.autocontext == 1
    assert get_method("svm")().params.autocontext == 0
    with pytest.raises(ConfigError, match="autocontext"):
        get_method("random-forest")(autocontext=7)
    img, truth = disc_phantom((32, 32), seed=0)
    with pytest.raises(ConfigError, match="interactively"):
        fit_predict_scribbles(img, truth.array + 1, autocontext=1)


def test_autocontext_falls_back_when_a_half_lacks_a_class():
    """Two images with different classes cannot be cross-fitted; training still succeeds."""
    img0, t0 = disc_phantom((40, 40), seed=0)
    img1, t1 = disc_phantom((40, 40), seed=1)
    lab1 = t1.array.astype(np.uint8) * 2  # image 1 holds class 2, image 0 class 1
    seg = make("random-forest", autocontext=1).fit([img0, img1], [t0, lab1])
    assert seg.context_ is not None and seg.classes_.tolist() == [0, 1, 2]
    assert seg.predict_proba(img0).array.shape == (3, 40, 40)


def test_autocontext_training_reuses_own_features_exactly(monkeypatch):
    """The next stage's training samples take the image's own features from the earlier
    stage's prediction; the fitted model must equal one whose samples are computed afresh."""
    import medseg.ml.fitting as sm

    data = [fundus_phantom((64, 72), seed=s) for s in range(4)]
    args = ([d[0] for d in data], [d[1].array.astype(np.uint8) for d in data])
    img, _, roi = fundus_phantom((64, 72), seed=11)
    used = []
    real = sm._sample_with_own_rows
    monkeypatch.setattr(sm, "_sample_with_own_rows",
                        lambda im, cfg, idx, own: used.append(own is not None) or real(im, cfg, idx, own))
    for rois in ([d[2] for d in data], None):
        used.clear()
        reuse = make("random-forest", autocontext=1, n_estimators=8).fit(*args, rois=rois)
        assert sum(used) == len(data)  # every second-stage image took its own features over
        with monkeypatch.context() as m:
            m.setattr(sm, "_sample_with_own_rows", lambda im, cfg, idx, own: sm.sample_features(im, cfg, idx))
            fresh = make("random-forest", autocontext=1, n_estimators=8).fit(*args, rois=rois)
        np.testing.assert_array_equal(reuse.predict_proba(img, roi=roi).array, fresh.predict_proba(img, roi=roi).array)


def test_cascade_leaves_clear_background_to_the_first_stage(monkeypatch, tmp_path):
    from medseg.ml.segmenter import PixelClassifier

    data = [fundus_phantom((96, 96), seed=s) for s in range(4)]
    seg = make("random-forest", autocontext=1, n_estimators=16).fit(
        [d[0] for d in data], [d[1].array.astype(np.uint8) for d in data], rois=[d[2] for d in data])
    rb = seg.reject_below_
    assert rb is not None and 0 < rb <= seg.threshold_
    img, _, roi = fundus_phantom((96, 96), seed=11)
    inside = roi.array > 0
    rows = []
    real = PixelClassifier._proba_rows
    monkeypatch.setattr(PixelClassifier, "_proba_rows",
                        lambda self, X: rows.append((self is seg, X.shape[0])) or real(self, X))
    fast = seg.predict_proba(img, roi=roi).array
    fast_labels = seg.predict(img, roi=roi).array
    n_fast = sum(n for last, n in rows if last)
    seg.reject_below_ = None
    rows.clear()
    full = seg.predict_proba(img, roi=roi).array
    full_labels = seg.predict(img, roi=roi).array
    n_full = sum(n for last, n in rows if last)
    seg.reject_below_ = rb
    first = seg.context_.predict_proba(img, roi=roi).array
    easy = (first[1] < rb) & inside
    assert easy.any() and n_fast == 2 * int((inside & ~easy).sum()) and n_full == 2 * int(inside.sum())
    np.testing.assert_array_equal(fast[:, easy], first[:, easy])  # skipped: the first stage's answer
    np.testing.assert_array_equal(fast[:, ~easy], full[:, ~easy])  # the rest: unchanged
    assert (fast_labels != full_labels).mean() < 0.002
    seg.save(tmp_path / "m")
    assert load_model(tmp_path / "m").reject_below_ == rb
    # no tuned threshold (argmax), no cascade
    argmax = make("random-forest", autocontext=1, n_estimators=8).fit(
        [d[0] for d in data], [d[1].array.astype(np.uint8) for d in data], rois=[d[2] for d in data],
        options=get_method("random-forest").TrainParams(threshold="argmax"))
    assert argmax.reject_below_ is None


def test_nan_in_a_training_case_is_refused_with_its_name(tmp_path):
    from medseg.io import load_dataset

    root = make_dataset(tmp_path / "d", kind="disc", n=3, shape=(24, 24), layout="npy")
    im = np.load(root / "images.npy").astype(np.float32)
    im[1, 2, 2] = np.inf
    np.save(root / "images.npy", im)
    with pytest.raises(InputError, match="case '1': the image contains 1 NaN/Inf"):
        make("decision-tree").train(load_dataset(root), tmp_path / "m")
    assert not (tmp_path / "m").exists()
