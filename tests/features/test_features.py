import numpy as np
import pytest

from medseg.errors import ConfigError, InputError
from medseg.features import (
    FEATURES,
    FeatureConfig,
    default_sigmas,
    feature_names,
    feature_stack,
    region_table,
)
from medseg.features.regions import write_region_csv
from medseg.features.stack import feature_rows, iter_feature_blocks, sample_features
from medseg.image import Image
from medseg.testing import disc_phantom, fundus_phantom

ALL = tuple(FEATURES.names())


def test_registry_lists_the_promised_filters():
    for name in ("intensity", "gaussian", "gradient", "log", "dog", "hessian", "structure", "frangi", "sato",
                 "meijering", "lbp", "gabor", "entropy", "local_std"):
        assert name in ALL


def test_every_feature_carries_its_halo():
    """A registry entry holds the filter and its halo (per axis, in voxels of an anisotropic
    grid); that the halos are wide enough is checked by the chunked == unchunked tests."""
    from medseg.features import Feature, FeatureContext

    ctx = FeatureContext(np.zeros((1, 1, 1), np.float32), (2.0, 1.0, 0.5), (1.0, 2.0))
    for name in ALL:
        entry = FEATURES.get(name)
        assert isinstance(entry, Feature) and entry.name == name
        halo = entry.halo(ctx)
        assert halo.dtype.kind == "i" and halo.shape == (3,) and (halo >= 0).all()
    gaussian = FEATURES.get("gaussian").halo(ctx)
    assert gaussian.tolist() == [4, 8, 16]  # 4 sigma of 2 mm in voxels of 2, 1 and 0.5 mm
    assert (FEATURES.get("hessian").halo(ctx) > gaussian).all()  # derivatives read further


def test_unknown_feature_suggests():
    with pytest.raises(ConfigError, match="did you mean 'hessian'"):
        FeatureConfig(features=("hesian",))


def test_config_round_trip():
    cfg = FeatureConfig(features=("gaussian", "frangi"), sigmas=(2.0, 1.0), channels=(1,), ridges="dark")
    back = FeatureConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.sigmas == (1.0, 2.0)


def test_all_filters_2d_finite_and_named():
    img, _ = disc_phantom((40, 40), seed=0)
    feats, names = feature_stack(img, FeatureConfig(features=ALL, sigmas=(1.0, 2.0)))
    assert feats.shape == (len(names), 40, 40) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert len(set(names)) == len(names)
    assert names == feature_names(img, FeatureConfig(features=ALL, sigmas=(1.0, 2.0)))


def test_chunked_equals_unchunked_3d():
    img, _ = disc_phantom((16, 48, 48), seed=2, spacing=(2.0, 1.0, 1.0))
    volumetric = tuple(f for f in ALL if f not in ("lbp", "gabor"))  # in-plane filters: 2D test below
    cfg = FeatureConfig(features=volumetric, sigmas=(1.0,))
    whole, _ = feature_stack(img, cfg)
    n_blocks = sum(1 for _ in iter_feature_blocks(img, cfg, max_memory_mb=2.5))
    assert n_blocks >= 3
    blocks, _ = feature_stack(img, cfg, max_memory_mb=2.5)
    np.testing.assert_allclose(blocks, whole, rtol=1e-5, atol=1e-5)


def test_chunked_equals_unchunked_2d_all_filters():
    img, _ = disc_phantom((96, 80), seed=2, spacing=(1.0, 0.5))
    cfg = FeatureConfig(features=ALL, sigmas=(1.0, 2.0))
    whole, _ = feature_stack(img, cfg)
    blocks, _ = feature_stack(img, cfg, max_memory_mb=0.8)
    np.testing.assert_allclose(blocks, whole, rtol=1e-5, atol=1e-5)


def test_sample_features_matches_stack():
    img, _ = disc_phantom((16, 30, 30), seed=3)
    cfg = FeatureConfig(features=("gaussian", "hessian"), sigmas=(1.0, 2.0))
    whole, _ = feature_stack(img, cfg)
    idx = np.array([0, 17, 5000, 16 * 30 * 30 - 1])
    got = sample_features(img, cfg, idx, max_memory_mb=0.2)
    np.testing.assert_allclose(got, whole.reshape(whole.shape[0], -1)[:, idx].T, rtol=1e-6)


@pytest.mark.parametrize("max_mb", [None, 1.0])
def test_feature_rows_equal_masked_stack(max_mb, monkeypatch):
    img, _ = disc_phantom((16, 64, 64), seed=3)
    cfg = FeatureConfig(features=("gaussian", "gradient", "hessian"), sigmas=(1.0,))
    whole, _ = feature_stack(img, cfg)
    mask = np.zeros(img.shape, bool)
    mask[2:5, 3:20, 4:9] = True
    mask[12, 55, 60] = True
    np.testing.assert_allclose(feature_rows(img, cfg, mask, max_memory_mb=max_mb), whole[:, mask], rtol=1e-6)
    np.testing.assert_allclose(feature_rows(img, cfg, max_memory_mb=max_mb),
                               whole.reshape(whole.shape[0], -1), rtol=1e-6)
    assert feature_rows(img, cfg, np.zeros(img.shape, bool), max_memory_mb=max_mb).shape == (whole.shape[0], 0)
    if max_mb:  # blocks without a masked voxel are not computed
        import medseg.features.stack as st

        n_blocks = sum(1 for _ in iter_feature_blocks(img, cfg, max_memory_mb=max_mb))
        computed = []
        real = st._iter_block_parts

        def spy(*a, **k):
            for core, parts in real(*a, **k):
                computed.append(core)
                yield core, parts

        monkeypatch.setattr(st, "_iter_block_parts", spy)
        feature_rows(img, cfg, mask, max_memory_mb=max_mb)
        assert 0 < len(computed) < n_blocks
        assert all(mask[c].any() for c in computed)
    with pytest.raises(InputError, match="mask shape"):
        feature_rows(img, cfg, mask[0])


def test_scales_are_physical():
    # the same object sampled at half the spacing must give the same feature at the
    # same physical point when scales are given in mm
    rng = np.random.default_rng(0)
    fine = np.zeros((128, 128), np.float32)
    fine[40:88, 60:68] = 1.0  # an 8 px wide bar at spacing 0.5 mm = 4 mm
    coarse = fine.reshape(64, 2, 64, 2).mean(axis=(1, 3))  # spacing 1 mm
    cfg = FeatureConfig(features=("gaussian", "hessian"), sigmas=(2.0, 4.0), normalise="none")
    f_fine, _ = feature_stack(Image(fine, (0.5, 0.5)), cfg)
    f_coarse, _ = feature_stack(Image(coarse, (1.0, 1.0)), cfg)
    # compare at the bar centre (physical (32, 32) mm)
    a = f_fine[:, 64, 64]
    b = f_coarse[:, 32, 32]
    np.testing.assert_allclose(a, b, rtol=0.2, atol=0.03)
    # in voxel units the same sigmas would differ clearly
    f_vox, _ = feature_stack(Image(fine, (1.0, 1.0)), cfg)
    assert np.abs(f_vox[:, 64, 64] - b).max() > 0.05
    del rng


def test_anisotropic_spacing_changes_per_axis_sigma():
    img = np.zeros((32, 32), np.float32)
    img[16, 16] = 1
    cfg = FeatureConfig(features=("gaussian",), sigmas=(2.0,), normalise="none")
    f, _ = feature_stack(Image(img, (2.0, 1.0)), cfg)
    g = f[0]
    # sigma is 1 voxel along y (2 mm spacing) and 2 voxels along x
    assert g[17, 16] < g[16, 17]


def test_default_sigmas_follow_spacing_and_extent():
    img, _ = disc_phantom((64, 64), seed=0, spacing=(0.5, 0.5))
    assert default_sigmas(img) == (0.25, 0.5, 1.0, 2.0)  # 32 mm extent -> at most 2 mm
    big = Image(np.zeros((512, 512), np.float32), (0.2, 0.3))
    assert default_sigmas(big)[0] == 0.1  # half the finest spacing


def test_channels_per_channel_and_selected():
    rgb, _, _ = fundus_phantom((64, 64), seed=0)
    cfg = FeatureConfig(features=("gaussian",), sigmas=(1.0,))
    f, names = feature_stack(rgb, cfg)
    assert names == ["c0_gaussian_s1", "c1_gaussian_s1", "c2_gaussian_s1"]
    g, gnames = feature_stack(rgb, FeatureConfig(features=("gaussian",), sigmas=(1.0,), channels=(1,)))
    assert gnames == ["gaussian_s1"]
    np.testing.assert_array_equal(g[0], f[1])
    with pytest.raises(InputError, match="channel"):
        feature_stack(rgb, FeatureConfig(features=("gaussian",), channels=(5,)))


def test_input_not_modified():
    img, _ = disc_phantom((32, 32), seed=0)
    before = img.array.copy()
    feature_stack(img, FeatureConfig(features=("gaussian", "hessian"), sigmas=(1.0,)))
    np.testing.assert_array_equal(img.array, before)


def test_vesselness_responds_to_dark_line():
    a = np.ones((48, 48), np.float32)
    a[:, 23:26] = 0.0
    img = Image(a)
    f, names = feature_stack(img, FeatureConfig(features=("frangi", "sato", "meijering"), sigmas=(1.0, 2.0)))
    for name in ("frangi_dark", "sato_dark", "meijering_dark"):
        k = names.index(name)
        assert f[k][24, 24] > 5 * max(f[k][24, 5], 1e-6), name
        assert f[names.index(name.replace("dark", "bright"))][24, 24] <= f[k][24, 24]


def test_region_table_spacing_aware(tmp_path):
    lab = np.zeros((40, 40), np.uint8)
    lab[5:15, 5:25] = 1  # 10 x 20 px rectangle
    lab[30:36, 30:36] = 2
    img = Image(np.arange(1600, dtype=np.float32).reshape(40, 40), (2.0, 1.0))
    rows = region_table(Image(lab, (2.0, 1.0)), img)
    assert len(rows) == 2
    r = rows[0]
    assert r["label"] == 1 and r["size_voxels"] == 200 and r["volume"] == pytest.approx(400.0)
    assert r["equivalent_diameter"] == pytest.approx(2 * np.sqrt(400 / np.pi))
    assert r["elongation"] == pytest.approx(1.0, abs=0.1)  # 20 mm x 20 mm physically
    assert r["solidity"] == pytest.approx(1.0)
    assert r["mean"] == pytest.approx(img.array[5:15, 5:25].mean())
    assert "glcm_contrast" in r
    out = write_region_csv(rows, tmp_path / "r.csv")
    assert out.read_text().splitlines()[0].startswith("region,label,size_voxels")


def test_region_table_3d_and_bad_input():
    img, truth = disc_phantom((20, 32, 32), seed=1)
    rows = region_table(truth, img)
    assert rows and all(r["size_voxels"] > 0 for r in rows)
    with pytest.raises(InputError):
        region_table(img, img)


def test_threaded_features_equal_serial(monkeypatch):
    """Filters of one channel run in several threads sharing its cache: same values as one
    thread computing them in order."""
    import medseg.features.stack as st

    rgb, _, _ = fundus_phantom((64, 72), seed=2)
    cfg = FeatureConfig()
    monkeypatch.setattr(st.os, "cpu_count", lambda: 4)
    threaded, names = feature_stack(rgb, cfg)
    grey = feature_stack(rgb.channel(1), cfg)[0]
    monkeypatch.setattr(st.os, "cpu_count", lambda: 1)
    serial, _ = feature_stack(rgb, cfg)
    np.testing.assert_array_equal(threaded, serial)
    np.testing.assert_array_equal(grey, feature_stack(rgb.channel(1), cfg)[0])
    assert len(names) == threaded.shape[0]
