"""Regions of interest end to end: what a model learns outside its training ROIs, --roi at
prediction, the refusal of a model that needs an ROI, and what model.json records."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.dl.plan import Plan
from medseg.image import Image
from medseg.io import read_image, read_label, write_image
from medseg.ml import RandomForest
from medseg.roi import BACKGROUND, UNKNOWN, apply_roi_probabilities, needs_roi, outside_policy
from medseg.testing import fundus_phantom, make_dataset


def _fundus(n, seed=0, shape=(96, 96)):
    return [fundus_phantom(shape, seed=seed + s) for s in range(n)]


def test_policy_from_the_labels_outside():
    lab = np.array([[0, 1, 0, 0]])
    roi = np.array([[1, 1, 0, 0]])
    assert outside_policy([lab], [roi]) == BACKGROUND
    assert outside_policy([lab], [np.array([[1, 0, 0, 0]])]) == UNKNOWN   # a labelled pixel outside
    assert outside_policy([lab], [None]) is None
    assert not needs_roi({"roi": {"needs_roi": False}}) and needs_roi({"roi": {"needs_roi": True}})
    # a model written before the record existed, trained with an ROI, never saw the outside
    assert needs_roi({"plan": {"use_roi": True}}) and not needs_roi({"plan": {"use_roi": False}})


def test_forest_trained_with_a_background_roi_is_clean_outside_without_one():
    data = _fundus(3)
    rf = RandomForest(n_estimators=20).fit([d[0] for d in data], [d[1] for d in data], rois=[d[2] for d in data])
    assert rf.roi_outside_ == BACKGROUND
    img, truth, fov = fundus_phantom((96, 96), seed=21)
    out = rf(img).array                                  # no ROI given
    outside = fov.array == 0
    assert out[outside].mean() < 0.001                   # before the ROI issue: ~all of it was vessel
    inside = fov.array > 0
    dice = 2 * np.sum((out > 0) & (truth.array > 0) & inside) / (np.sum(out[inside] > 0) + np.sum(truth.array > 0))
    assert dice > 0.6


def test_forest_trained_inside_an_roi_with_labels_outside_needs_one(tmp_path):
    data = _fundus(2)
    labs = []
    for _img, lab, _fov in data:
        a = lab.array.copy()
        a[:10, :10] = 1                                   # a labelled region outside the field of view
        labs.append(a)
    rf = RandomForest(n_estimators=5).fit([d[0] for d in data], labs, rois=[d[2] for d in data])
    assert rf.roi_outside_ == UNKNOWN
    rf.save(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    assert info["roi"] == {"trained_with_roi": True, "outside": UNKNOWN, "needs_roi": True}
    write_image(data[0][0], tmp_path / "img.png")
    write_image(data[0][2], tmp_path / "fov.png")
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "img.png"), str(tmp_path / "out.png")]) == 2
    assert not (tmp_path / "out.png").exists()
    assert main(["predict", str(tmp_path / "m"), str(tmp_path / "img.png"), str(tmp_path / "out.png"),
                 "--roi", str(tmp_path / "fov.png")]) == 0
    assert read_label(tmp_path / "out.png").array[data[0][2].array == 0].max() == 0


def test_roi_at_prediction_zeroes_the_outside_for_a_folder(tmp_path, capsys):
    root = make_dataset(tmp_path / "data", kind="fundus", n=3, shape=(64, 64))
    assert main(["train", str(root), "--method", "random-forest", "--n-estimators", "5", "--out",
                 str(tmp_path / "rf")]) == 0
    info = json.loads((tmp_path / "rf" / "model.json").read_text())
    assert info["roi"]["outside"] == BACKGROUND and not info["roi"]["needs_roi"]
    # a folder of inputs, a folder of ROIs with more masks than inputs and other names
    imgs = tmp_path / "imgs"
    rois = tmp_path / "rois"
    imgs.mkdir()
    rois.mkdir()
    for i in range(2):
        img, _, fov = fundus_phantom((64, 64), seed=40 + i)
        write_image(img, imgs / f"{i:02d}_test.png")
        write_image(fov.with_array(np.zeros_like(fov.array) if i == 0 else fov.array), rois / f"{i:02d}_mask.png")
    write_image(fov, rois / "07_mask.png")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "rf"), str(imgs), str(tmp_path / "pred"), "--roi", str(rois),
                 "--probabilities"]) == 0
    assert read_label(tmp_path / "pred" / "00_test.png").array.max() == 0      # an empty ROI: nothing
    lab = read_label(tmp_path / "pred" / "01_test.png").array
    prob = read_image(tmp_path / "pred" / "01_test_prob.nii.gz").array
    out = read_label(rois / "01_mask.png").array == 0
    assert lab[out].max() == 0 and np.all(prob[0][out] == 1) and np.all(prob[1][out] == 0)
    # segment --model takes it too; an input without an ROI in the folder is one clear error
    write_image(img, imgs / "99_other.png")
    assert main(["segment", str(imgs), str(tmp_path / "seg"), "--model", str(tmp_path / "rf"),
                 "--roi", str(rois)]) == 2
    err = capsys.readouterr().err
    assert "99_other.png" in err and "ROI" in err


def test_probabilities_outside_the_roi():
    p = Image(np.full((3, 2, 2), 1 / 3, np.float32), spacing=(1.0, 1.0))
    roi = np.array([[1, 0], [1, 1]])
    a = apply_roi_probabilities(p, roi).array
    assert a[:, 0, 1].tolist() == [1, 0, 0] and np.allclose(a.sum(0), 1)
    with pytest.raises(Exception, match="same grid"):
        apply_roi_probabilities(p, np.ones((3, 3)))


def _prepared(policy):
    from medseg.train.data import PatchSampler, PreparedCase

    rng = np.random.default_rng(0)
    img = rng.normal(size=(1, 64, 64)).astype(np.float32)
    lab = np.zeros((64, 64), np.uint8)
    lab[30:34, 20:44] = 1
    roi = np.zeros((64, 64), np.uint8)
    roi[16:48, 16:48] = 1
    plan = Plan(dims=2, in_channels=1, n_classes=2, patch_size=(16, 16), batch_size=8, use_roi=True,
                roi_outside=policy, fg_oversample=0.0, augment=False, mirror_axes=(0, 1))
    case = PreparedCase("c", img, lab, roi, {1: np.argwhere(lab == 1).astype(np.int32)},
                        np.argwhere(roi > 0).astype(np.int32), outside_in_loss=policy == BACKGROUND)
    return PatchSampler([case], plan, seed=0, augment=False), roi


@pytest.mark.parametrize("policy", [BACKGROUND, UNKNOWN])
def test_unet_patches_learn_the_outside_only_when_it_is_background(policy):
    sampler, roi = _prepared(policy)
    masks = [sampler.batch(step)[2] for step in range(30)]
    weight_outside = np.concatenate([m.reshape(len(m), -1) for m in masks]).min()
    if policy == BACKGROUND:
        # the outside counts in the loss, and some patches lie wholly outside the ROI
        assert weight_outside == 1.0
        assert any((m.reshape(len(m), -1).min(axis=1) == 1).any() for m in masks)
    else:
        assert weight_outside == 0.0


def test_unet_records_its_roi_policy(tmp_path):
    pytest.importorskip("torch")
    root = make_dataset(tmp_path / "data", kind="fundus", n=3, shape=(48, 48))
    assert main(["train", str(root), "--method", "unet", "--epochs", "1", "--iters-per-epoch", "2",
                 "--channels", "4,8", "--batch-size", "2", "--folds", "1", "--out", str(tmp_path / "u")]) == 0
    info = json.loads((tmp_path / "u" / "model.json").read_text())
    assert info["plan"]["roi_outside"] == BACKGROUND
    assert info["roi"] == {"trained_with_roi": True, "outside": BACKGROUND, "needs_roi": False}
