"""Slab-wise label prediction of large 3D volumes (bounded stitching memory)."""
import tracemalloc

import numpy as np
import pytest
import torch

from medseg.dl.plan import Plan
from medseg.image import Image
from medseg.infer.predictor import Predictor
from medseg.metrics import dice
from medseg.testing import disc_phantom

SHAPE = (96, 24, 24)


def _threshold_net():
    """Instance norm (so a window's result depends on the voxels it covers, as in a U-Net),
    then a 3x3x3 mean filter as the foreground logit: a fixed, sensible segmenter of bright balls."""
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[1] = 4.0 / 27
        conv.bias.copy_(torch.tensor([0.0, -3.0]))
    return torch.nn.Sequential(torch.nn.InstanceNorm3d(1), conv).eval()


def _plan(**kw):
    return Plan(dims=3, in_channels=1, n_classes=2, patch_size=(16, 16, 16), normalisation=("zscore",),
                mirror_axes=(0, 1, 2), aug_strength=1.0, **kw)


@pytest.fixture(scope="module")
def phantom():
    img, truth = disc_phantom(SHAPE, n_objects=12, noise=0.3, seed=3)
    return img, truth.array


def test_slabs_agree_with_the_whole_volume(phantom):
    img, truth = phantom
    plan, net = _plan(), _threshold_net()
    whole = Predictor([net], plan, tta=False, overlap=0.25, device="cpu")
    ref = whole.predict(img)
    assert whole.last_slabs == 0  # a normal size: the whole-volume path, exactly predict_proba's argmax
    np.testing.assert_array_equal(ref, np.argmax(whole.predict_proba(img).array, axis=0))
    # 3 x 4 bytes per voxel, 576 voxels a slice: at most 3 windows' length (48 slices) per slab
    slabs = Predictor([net], plan, tta=True, overlap=0.25, device="cpu", max_stitch_bytes=12 * 576 * 48)
    whole_tta = Predictor([net], plan, tta=True, overlap=0.25, device="cpu").predict(img)
    for pred, want in ((Predictor([net], plan, tta=False, overlap=0.25, device="cpu",
                                  max_stitch_bytes=12 * 576 * 48), ref), (slabs, whole_tta)):
        got = pred.predict(img)
        assert pred.last_slabs >= 3
        assert got.dtype == np.uint8 and got.shape == SHAPE
        assert (got == want).mean() >= 0.999
        d_ref = dice(want, truth)
        assert d_ref > 0.8  # the segmenter works, so the comparison means something
        assert abs(dice(got, truth) - d_ref) <= 0.002


def test_slab_path_allocates_no_full_size_buffers():
    shape = (192, 24, 24)
    img, _ = disc_phantom(shape, n_objects=12, noise=0.3, seed=4)
    plan = _plan()
    budget = 12 * 576 * 48
    pred = Predictor([_threshold_net()], plan, tta=False, overlap=0.25, device="cpu", max_stitch_bytes=budget)
    seen = []
    run = pred._ensemble

    def record(array, **kw):
        seen.append(array.shape)
        return run(array, **kw)

    pred._ensemble = record

    def whole(*a, **kw):
        raise AssertionError("the whole-volume probabilities were computed")

    pred.predict_proba = whole
    vox = int(np.prod(shape))
    tracemalloc.start()
    try:
        lab = pred.predict(img)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lab.shape == shape and pred.last_slabs == len(seen) >= 3
    for slab in seen:  # every stitched slab is under the budget (K + 1 float32 per voxel)
        assert slab[1] < shape[0] and 3 * 4 * int(np.prod(slab[1:])) <= budget
    assert sum(s[1] for s in seen) >= shape[0]  # together they cover the volume
    # no full-size float copy on the NumPy side either: under one float32 volume (4 bytes per voxel) in all,
    # the uint8 label map included (the whole-volume path peaks at ~17 bytes per voxel here)
    assert peak < 3 * vox


def test_resampled_or_small_volumes_run_whole(phantom):
    img, _ = phantom
    plan = _plan(target_spacing=(2.0, 1.0, 1.0))
    pred = Predictor([_threshold_net()], plan, tta=False, device="cpu", max_stitch_bytes=2 ** 12)
    assert pred.predict(img).shape == SHAPE and pred.last_slabs == 0  # resampling: the whole volume
    small = Image(img.array[:40])
    pred = Predictor([_threshold_net()], _plan(), tta=False, device="cpu", max_stitch_bytes=12 * 576 * 48)
    assert pred.predict(small).shape == (40, 24, 24) and pred.last_slabs == 0  # fits in one slab


@pytest.mark.parametrize(("shape", "spacing", "target", "tta"), [
    ((96, 24, 24), (2.0, 1.0, 1.0), (1.0, 1.0, 1.0), False),  # thick slices: the plan doubles z
    ((192, 30, 30), (1.0, 0.8, 0.8), (2.0, 1.0, 1.0), False),  # thin slices, fine pixels: halves z, shrinks the plane
    ((96, 24, 24), (3.0, 1.0, 1.0), (1.5, 1.0, 1.0), True),  # mirrorings along z have their own window layout
])
def test_resampled_volume_in_slabs(shape, spacing, target, tta):
    img, truth = disc_phantom(shape, n_objects=12, noise=0.3, seed=5, spacing=spacing)
    truth = truth.array
    plan, net = _plan(target_spacing=target), _threshold_net()
    whole = Predictor([net], plan, tta=tta, overlap=0.25, device="cpu")
    ref = whole.predict(img)
    assert whole.last_slabs == 0
    np.testing.assert_array_equal(ref, np.argmax(whole.predict_proba(img).array, axis=0))
    pred = Predictor([net], plan, tta=tta, overlap=0.25, device="cpu", max_stitch_bytes=2 ** 12)

    def whole_volume(*a, **kw):
        raise AssertionError("the whole-volume probabilities were computed")

    pred.predict_proba = whole_volume
    got = pred.predict(img)
    assert pred.last_slabs >= 2  # the slab path, not the whole volume
    assert got.dtype == np.uint8 and got.shape == shape
    assert (got == ref).mean() >= 0.995
    d_ref = dice(ref, truth)
    assert d_ref > 0.8
    assert abs(dice(got, truth) - d_ref) <= 0.005
