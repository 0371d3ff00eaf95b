import dataclasses

import numpy as np
import pytest

from medseg.dl.plan import Plan
from medseg.dl.preprocessing import normalise, preprocess
from medseg.image import Image
from medseg.train.data import PatchSampler, Prefetcher, PreparedCase


def _case(shape=(40, 40), seed=0, roi=True):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(1,) + shape).astype(np.float32)
    lab = np.zeros(shape, np.uint8)
    lab[5:9, 5:9] = 1
    r = None
    if roi:
        r = np.zeros(shape, np.uint8)
        r[:, : shape[1] // 2] = 1
    fg = {1: np.argwhere(lab == 1).astype(np.int32)}
    ri = None if r is None else np.argwhere(r > 0).astype(np.int32)
    return PreparedCase("c", img, lab, r, fg, ri)


PLAN = Plan(dims=2, in_channels=1, n_classes=2, patch_size=(16, 16), batch_size=6, fg_oversample=0.5,
            mirror_axes=(0, 1), normalisation=("zscore",), ct_stats=((),), target_spacing=(1.0, 1.0))


def test_batches_depend_only_on_seed_and_step():
    a = PatchSampler([_case()], PLAN, seed=3)
    b = PatchSampler([_case()], PLAN, seed=3)
    for step in (0, 7, 123):
        for u, v in zip(a.batch(step), b.batch(step)):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.batch(1)[0], a.batch(2)[0])
    assert not np.array_equal(a.batch(1)[0], PatchSampler([_case()], PLAN, seed=4).batch(1)[0])


@pytest.mark.parametrize("workers", [0, 2])
def test_prefetcher_matches_sequential(workers):
    s = PatchSampler([_case()], PLAN, seed=1)
    got = list(Prefetcher(s, 5, 12, workers=workers))
    assert len(got) == 7
    for i, (x, _y, _m) in enumerate(got):
        np.testing.assert_array_equal(x, s.batch(5 + i)[0])


def test_shapes_roi_mask_and_oversampling():
    s = PatchSampler([_case()], dataclasses.replace(PLAN, batch_size=4), seed=0, augment=False)
    fg_hits = 0
    for step in range(30):
        x, y, m = s.batch(step)
        assert x.shape == (4, 1, 16, 16) and y.shape == (4, 16, 16) and m.shape == (4, 16, 16)
        assert y.dtype == np.int64 and x.dtype == np.float32
        fg_hits += int((y[-2:] == 1).any(axis=(1, 2)).sum())
    assert fg_hits == 60  # the last half of each batch is centred on foreground


def test_no_loss_outside_roi_or_image():
    case = _case(roi=True)  # ROI: columns < 20 of a 40x40 image
    xs = np.broadcast_to(np.arange(40, dtype=np.float32), (40, 40))
    inside = np.ones((40, 40), np.float32)
    inside[39, 39] = 0.0  # so that padding (the channel minimum) reads as "outside"
    case.image = np.stack([xs, inside])
    plan = dataclasses.replace(PLAN, in_channels=2, fg_oversample=0.0, patch_size=(24, 24))
    s = PatchSampler([case], plan, seed=0, augment=False)
    for step in range(10):
        x, y, m = s.batch(step)
        expected = (x[:, 1] == 1) & (x[:, 0] < 20)
        np.testing.assert_array_equal(m.astype(bool), expected)
        assert (m == 0).any()


def test_augmentation_keeps_labels_valid():
    s = PatchSampler([_case(roi=False)], PLAN, seed=0, augment=True)
    for step in range(40):
        x, y, m = s.batch(step)
        assert np.isfinite(x).all()
        assert set(np.unique(y)) <= {0, 1}
        assert set(np.unique(m)) <= {0.0, 1.0}


def test_normalise_ct_and_zscore():
    a = np.array([[[-2000.0, 0.0, 100.0, 5000.0]]])
    ct = normalise(a, ["ct"], [(-1000.0, 1000.0, 0.0, 100.0)])
    np.testing.assert_allclose(ct[0, 0], [-10, 0, 1, 10])
    z = normalise(np.arange(8.0).reshape(1, 2, 4), ["zscore"], [()])
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-5


def test_preprocess_resamples_to_target_and_checks_channels():
    from medseg.errors import InputError

    plan = dataclasses.replace(PLAN, target_spacing=(1.0, 1.0))
    img = Image(np.random.default_rng(0).normal(size=(20, 30)), spacing=(2.0, 1.0))
    a, f = preprocess(img, plan)
    assert a.shape == (1, 40, 30) and f == (2.0, 1.0)
    with pytest.raises(InputError, match="channel"):
        preprocess(Image(np.zeros((3, 20, 30)), spacing=(1.0, 1.0)), plan)
    with pytest.raises(InputError, match="3D"):
        preprocess(Image(np.zeros((4, 20, 30))), plan)
