"""The line-strength (``lines``) and top-hat (``tophat``) feature families."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from medseg.features import FOREST_FEATURES, FeatureConfig, feature_stack
from medseg.features.context import FeatureContext
from medseg.features.filters import N_LINE_ORIENTATIONS, _line_points, line_means, line_strength, top_hat
from medseg.image import Image


def _direct(a: np.ndarray, sigma: float, spacing=(1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """Line strength of one scale computed on its own (each line summed from scratch)."""
    reach = 2.5 * sigma
    hy, hx = (max(1, int(round(reach / sp))) for sp in spacing)
    pad = np.pad(a, ((hy, hy), (hx, hx)), mode="symmetric")
    h, w = a.shape
    means = []
    for k in range(N_LINE_ORIENTATIONS):
        pts, dist = _line_points(reach, spacing, np.pi * k / N_LINE_ORIENTATIONS)
        pts = pts[dist <= reach + 1e-9]
        means.append(np.mean([pad[hy + dy:hy + dy + h, hx + dx:hx + dx + w] for dy, dx in pts], axis=0))
    avg = ndi.uniform_filter(a, (2 * hy + 1, 2 * hx + 1), mode="reflect")
    return avg - np.min(means, axis=0), np.max(means, axis=0) - avg


def test_lines_reading_shorter_scales_on_the_way_equals_each_scale_alone():
    rng = np.random.default_rng(0)
    a = rng.random((40, 37)).astype(np.float32)
    for spacing in ((1.0, 1.0), (1.0, 0.5)):
        ctx = FeatureContext(a, spacing, (0.5, 1.0, 2.0, 4.0), ridges="both")
        got = dict(line_strength(ctx))
        for s in ctx.sigmas:
            dark, bright = _direct(a, s, spacing)
            np.testing.assert_allclose(got[f"lines_dark_s{s:g}"], dark, atol=1e-5)
            np.testing.assert_allclose(got[f"lines_bright_s{s:g}"], bright, atol=1e-5)


def test_lines_answer_a_thin_dark_line_at_any_orientation_and_not_the_background():
    yy, xx = np.mgrid[:61, :61] - 30.0
    for angle in np.deg2rad([0, 20, 45, 70, 90, 135]):
        dist = np.abs(-np.sin(angle) * xx - np.cos(angle) * yy)  # distance to a line through the centre
        img = np.where(dist < 1.0, 0.2, 1.0).astype(np.float32)
        (name, r), = line_strength(FeatureContext(img, (1.0, 1.0), (2.0,), ridges="dark"))
        assert name == "lines_dark_s2"
        assert r[30, 30] > 0.5, angle  # on the line: the darkest line is the vessel itself
        y, x = (int(round(30 + 15 * np.cos(angle))), int(round(30 + 15 * np.sin(angle))))
        assert abs(r[y, x]) < 1e-6, angle  # 15 px off the line: the window does not reach it


def test_lines_and_tophat_run_slice_by_slice_in_3d():
    rng = np.random.default_rng(1)
    vol = rng.random((3, 24, 20)).astype(np.float32)
    for fn in (line_strength, top_hat):
        got = dict(fn(FeatureContext(vol, (3.0, 1.0, 1.0), (1.0, 2.0))))
        for z in range(3):
            ref = dict(fn(FeatureContext(vol[z], (1.0, 1.0), (1.0, 2.0))))
            for name, arr in ref.items():
                np.testing.assert_allclose(got[name][z], arr, atol=1e-6)


def test_tophat_finds_dark_structures_narrower_than_its_box_only():
    img = np.ones((41, 41), np.float32)
    img[20, :] = 0.0  # one pixel wide: inside a 2.5-pixel box either side
    img[:, 5:25] = np.where(np.arange(41)[:, None] < 10, 0.0, img[:, 5:25])  # a dark block 20 px wide
    (name, r), = top_hat(FeatureContext(img, (1.0, 1.0), (1.0,), ridges="dark"))
    assert name == "tophat_dark_s1"
    assert r[20, 30] == 1.0 and r[3, 15] == 0.0 and r[30, 30] == 0.0


def test_forests_take_line_strength_by_default_and_distance_classifiers_do_not():
    from medseg.ml import KNN, SVM, ExtraTrees, RandomForest

    assert RandomForest().params.default_features(2) == FOREST_FEATURES == ExtraTrees().params.default_features(2)
    assert "lines" in FOREST_FEATURES
    assert "lines" not in KNN().params.features and "lines" not in SVM().params.features
    img = Image(np.random.default_rng(2).random((32, 30)).astype(np.float32))
    stack, names = feature_stack(img, FeatureConfig(features=("lines",), sigmas=(1.0, 2.0)))
    assert stack.shape == (4, 32, 30) and names == ["lines_dark_s1", "lines_bright_s1", "lines_dark_s2",
                                                    "lines_bright_s2"]


def test_line_means_one_polarity_equals_the_pair_and_the_dark_side_is_the_negated_bright():
    rng = np.random.default_rng(2)
    a = rng.random((30, 33)).astype(np.float32)
    reaches = [1.0, 2.5, 4.0]
    pairs = line_means(a, reaches, (1.0, 1.0))
    for (hi, lo), (hi_only, none), (none2, lo_only), (neg_hi, _) in zip(
            pairs, line_means(a, reaches, dark=False), line_means(a, reaches, bright=False), line_means(-a, reaches)):
        assert none is None and none2 is None
        np.testing.assert_array_equal(hi, hi_only)
        np.testing.assert_array_equal(lo, lo_only)
        np.testing.assert_allclose(lo, -neg_hi, atol=1e-6)
        assert (hi >= lo).all()


def test_line_means_refuses_what_it_cannot_compute_with_one_clear_error():
    import pytest

    from medseg.errors import ConfigError

    with pytest.raises(ConfigError, match="2D array"):
        line_means(np.zeros((2, 5, 5), np.float32), [1.0])
    with pytest.raises(ConfigError, match="bright=True or dark=True"):
        line_means(np.zeros((5, 5), np.float32), [1.0], bright=False, dark=False)
    with pytest.raises(ConfigError, match="at least one reach"):
        line_means(np.zeros((5, 5), np.float32), [])


def test_forests_default_features_come_from_the_data_dimension():
    from medseg.features import DEFAULT_FEATURES
    from medseg.ml import RandomForest
    from medseg.testing import disc_phantom

    img2, t2 = disc_phantom((40, 40), seed=1)
    img3, t3 = disc_phantom((8, 40, 40), seed=1)
    assert RandomForest().params.features is None
    rf2 = RandomForest(n_estimators=3, autocontext=0, sigmas=(1.0,)).fit(img2, t2)
    rf3 = RandomForest(n_estimators=3, autocontext=0, sigmas=(1.0,)).fit(img3, t3)
    assert rf2.feature_config_.features == FOREST_FEATURES
    assert rf3.feature_config_.features == DEFAULT_FEATURES  # slice-wise lines miss out-of-plane lines
    asked = RandomForest(n_estimators=3, autocontext=0, sigmas=(1.0,), features=("gaussian", "lines")).fit(img3, t3)
    assert asked.feature_config_.features == ("gaussian", "lines")  # asked for: kept on 3D
    assert any(n.startswith("lines_") for n in asked.feature_names_)
