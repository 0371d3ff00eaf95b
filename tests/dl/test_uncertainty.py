"""Uncertainty maps of the fold/mirror ensemble, temperature scaling and ``predict --uncertainty``."""
import csv
import json

import numpy as np
import pytest
import torch

from medseg.cli.main import main
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.infer.predictor import UNCERTAINTY_MAPS, Predictor
from medseg.io import load_dataset, read_image, write_image
from medseg.methods.dl import train_unet
from medseg.run import UNCERTAINTY_COLUMNS, apply_paths
from medseg.testing import disc_phantom, make_dataset
from medseg.train import TrainConfig

FAST = dict(progress=False, workers=1, channels=(8, 16, 32), iters_per_epoch=3, batch_size=2)


def _two_nets(tiny):
    plan, a = tiny()
    torch.manual_seed(1)
    from medseg.dl.network import build_net

    return plan, [a, build_net(plan)]


def test_ensemble_maps_match_the_members_held_at_once(tiny):
    plan, nets = _two_nets(tiny)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 40, 36)).astype(np.float32)
    pred = Predictor(nets, plan, tta=True, device="cpu")
    prob, maps = pred.probabilities_and_uncertainty(x)
    assert set(maps) == set(UNCERTAINTY_MAPS) and all(m.shape == (40, 36) for m in maps.values())
    np.testing.assert_allclose(prob, pred.probabilities(x), atol=1e-6)
    # the members one by one: each fold on each mirroring
    members = []
    for net in nets:
        fold = []
        for flip in pred._mirrors():
            xi = np.flip(x, [a - 1 for a in flip]).copy() if flip else x
            p = Predictor([net], plan, tta=False, device="cpu").probabilities(xi)
            fold.append(np.flip(p, [a - 1 for a in flip]) if flip else p)
        members.append(np.stack(fold))
    m = np.stack(members)  # (folds, mirrors, K, *S)
    mean = m.mean((0, 1))
    np.testing.assert_allclose(prob, mean, atol=1e-5)
    ent = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(0) / np.log(2)
    np.testing.assert_allclose(maps["entropy"], ent, atol=1e-4)
    fold_means = m.mean(1)
    np.testing.assert_allclose(maps["fold_spread"], np.sqrt(fold_means.var(0).sum(0) / 2), atol=1e-4)
    np.testing.assert_allclose(maps["mirror_spread"], np.sqrt(m.var(1).mean(0).sum(0) / 2), atol=1e-4)
    member_ent = -(m * np.log(np.clip(m, 1e-12, None))).sum(2).mean((0, 1)) / np.log(2)
    np.testing.assert_allclose(maps["mutual_information"], np.clip(ent - member_ent, 0, None), atol=1e-4)
    assert maps["fold_spread"].max() > 1e-3 and 0 <= maps["entropy"].min() and maps["entropy"].max() <= 1 + 1e-6


def test_one_network_without_mirroring_has_no_spread(tiny):
    plan, net = tiny()
    _, maps = Predictor([net], plan, tta=False, device="cpu").probabilities_and_uncertainty(
        np.random.default_rng(0).normal(size=(1, 33, 40)).astype(np.float32))
    assert maps["fold_spread"].max() == 0 and maps["mirror_spread"].max() == 0
    assert maps["mutual_information"].max() < 1e-5


def test_temperature_divides_the_logits(tiny):
    plan, net = tiny()
    x = np.random.default_rng(0).normal(size=(1, 40, 40)).astype(np.float32)
    p1 = Predictor([net], plan, tta=False, device="cpu").probabilities(x)
    p2 = Predictor([net], plan, tta=False, device="cpu", temperature=2.0).probabilities(x)
    z = np.log(p1) / 2.0
    want = np.exp(z - z.max(0)) / np.exp(z - z.max(0)).sum(0)
    np.testing.assert_allclose(p2, want, atol=1e-5)
    assert (p2.argmax(0) == p1.argmax(0)).all()
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError, match="temperature"):
            Predictor([net], plan, tta=False, device="cpu", temperature=bad)


class _Proba:
    """A segmenter with probabilities only (as the random forest)."""

    name = "fake"

    def __call__(self, image):
        return image.with_array((image.array > 0.5).astype(np.uint8))

    def predict_proba(self, image):
        p = np.clip(image.array.astype(np.float32), 0, 1)
        return image.with_array(np.stack([1 - p, p]))


def test_probability_only_methods_give_the_entropy_and_others_are_refused(tmp_path):
    img, _ = disc_phantom((32, 32))
    src = write_image(img.with_array(np.linspace(0, 1, 32 * 32).reshape(32, 32).astype(np.float32)),
                      tmp_path / "a.nii.gz")
    written = apply_paths(_Proba(), src, tmp_path / "out", uncertainty=True, progress=False, overwrite=False)
    names = sorted(p.name for p in written)
    assert names == ["a.nii.gz", "a_uncertainty.nii.gz", "uncertainty.csv"]  # no spread without an ensemble
    unc = read_image(tmp_path / "out" / "a_uncertainty.nii.gz").array
    assert unc.shape == (32, 32) and abs(unc.max() - 1.0) < 1e-3 and unc.min() < 1e-3
    rows = list(csv.DictReader(open(tmp_path / "out" / "uncertainty.csv")))
    assert list(rows[0]) == list(UNCERTAINTY_COLUMNS) and rows[0]["case"] == "a"
    assert rows[0]["fold_spread_structure"] == "" and 0 < float(rows[0]["expected_dice"]) <= 1
    with pytest.raises(InputError, match="no probabilities, so no uncertainty"):
        apply_paths(lambda im: im, src, tmp_path / "o2", uncertainty=True, progress=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    data = make_dataset(tmp_path_factory.mktemp("u") / "data", kind="disc", n=4, shape=(48, 48))
    out = tmp_path_factory.mktemp("um") / "model"
    info = train_unet(load_dataset(data), out, TrainConfig(epochs=1, folds=2, fold="all", **FAST))
    return out, info


def test_training_records_a_temperature_and_predict_applies_it(model, tmp_path, capsys):
    out, info = model
    t = json.loads((out / "model.json").read_text())["temperature"]
    assert t == info["temperature"] and 0.05 <= t <= 20
    img, _ = disc_phantom((48, 48), seed=7)
    src = write_image(img, tmp_path / "in" / "case.nii.gz")
    base = ["predict", str(out), str(src), "--device", "cpu", "--use-folds", "0", "--no-tta", "--compile", "off"]
    assert main(base + [str(tmp_path / "t"), "--probabilities"]) == 0
    assert main(base + [str(tmp_path / "n"), "--probabilities", "--no-temperature"]) == 0
    pt = read_image(tmp_path / "t" / "case_prob.nii.gz").array
    pn = read_image(tmp_path / "n" / "case_prob.nii.gz").array
    if abs(t - 1) > 1e-3:
        assert not np.allclose(pt, pn, atol=1e-4)
    assert (pt.argmax(0) == pn.argmax(0)).all()  # one network: temperature never changes the labels
    # a model.json without a temperature behaves as before (T = 1)
    js = json.loads((out / "model.json").read_text())
    old = tmp_path / "old"
    import shutil
    shutil.copytree(out, old)
    js.pop("temperature")
    (old / "model.json").write_text(json.dumps(js))
    assert main(["predict", str(old)] + base[2:] + [str(tmp_path / "o"), "--probabilities"]) == 0
    np.testing.assert_allclose(read_image(tmp_path / "o" / "case_prob.nii.gz").array, pn, atol=1e-6)


def test_predict_uncertainty_writes_maps_and_summary_and_respects_force(model, tmp_path, capsys):
    out, _ = model
    for i in range(2):
        img, _ = disc_phantom((48, 48), seed=10 + i)
        write_image(img, tmp_path / "in" / f"c{i}.nii.gz")
    argv = ["predict", str(out), str(tmp_path / "in"), str(tmp_path / "pred"), "--uncertainty", "--device", "cpu",
            "--compile", "off"]
    assert main(argv) == 0
    got = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert got == ["c0.nii.gz", "c0_spread.nii.gz", "c0_uncertainty.nii.gz", "c1.nii.gz", "c1_spread.nii.gz",
                   "c1_uncertainty.nii.gz", "manifest.json", "uncertainty.csv"]
    unc = read_image(tmp_path / "pred" / "c0_uncertainty.nii.gz")
    spread = read_image(tmp_path / "pred" / "c0_spread.nii.gz").array
    assert unc.shape == (48, 48) and spread.shape == (2, 48, 48) and spread[0].max() > 0  # two folds differ
    assert 0 <= unc.array.min() and unc.array.max() <= 1 + 1e-5
    rows = list(csv.DictReader(open(tmp_path / "pred" / "uncertainty.csv")))
    assert [r["case"] for r in rows] == ["c0", "c1"] and list(rows[0]) == list(UNCERTAINTY_COLUMNS)
    # the label map is the one plain prediction writes
    assert main(argv[:3] + [str(tmp_path / "plain"), "--device", "cpu", "--compile", "off"]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "pred" / "c0.nii.gz").array,
                                  read_image(tmp_path / "plain" / "c0.nii.gz").array)
    capsys.readouterr()
    # the uncertainty files count as outputs: refused without --force
    for name in ("c0.nii.gz", "c0_spread.nii.gz", "c1_uncertainty.nii.gz"):
        (tmp_path / "pred" / name).unlink()
    (tmp_path / "pred" / "c0_uncertainty.nii.gz").write_bytes(b"old")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0]
    assert (tmp_path / "pred" / "c0_uncertainty.nii.gz").read_bytes() == b"old"
    assert main(argv + ["--force"]) == 0
    assert (tmp_path / "pred" / "c0_uncertainty.nii.gz").read_bytes() != b"old"


def test_uncertainty_inside_an_roi(model, tmp_path):
    out, _ = model
    img, _ = disc_phantom((48, 48), seed=3)
    src = write_image(img, tmp_path / "a.nii.gz")
    roi = np.zeros((48, 48), np.uint8)
    roi[8:40, 8:40] = 1
    write_image(Image(roi), tmp_path / "roi.nii.gz")
    assert main(["predict", str(out), str(src), str(tmp_path / "p"), "--uncertainty", "--roi",
                 str(tmp_path / "roi.nii.gz"), "--device", "cpu", "--compile", "off"]) == 0
    unc = read_image(tmp_path / "p" / "a_uncertainty.nii.gz").array
    assert unc[roi == 0].max() == 0 and (read_image(tmp_path / "p" / "a.nii.gz").array[roi == 0] == 0).all()
