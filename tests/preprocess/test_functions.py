"""Preprocessing functions: 2D/3D, channel-aware, geometry kept, hand-checked values."""
import numpy as np
import pytest

from medseg import preprocess as P
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.testing import disc_phantom, head_phantom


def img2(spacing=(1.0, 1.0)):
    return Image(np.arange(20, dtype=np.float32).reshape(4, 5), spacing, origin=(3.0, 4.0))


def test_minmax_zscore_clip_gamma():
    out = P.minmax(img2())
    assert out.array.min() == 0 and out.array.max() == 1 and out.origin == (3.0, 4.0)
    z = P.zscore(img2())
    assert abs(z.array.mean()) < 1e-6 and abs(z.array.std() - 1) < 1e-5
    mask = np.zeros((4, 5), bool)
    mask[0] = True  # values 0..4: mean 2, std sqrt(2)
    zm = P.zscore(img2(), mask=mask)
    assert np.isclose(zm.array[0, 2], 0) and np.isclose(zm.array[0, 4], 2 / np.sqrt(2))
    with pytest.raises(InputError, match="empty"):
        P.zscore(img2(), mask=np.zeros((4, 5), bool))
    c = P.clip_percentile(img2(), lower=10, upper=90)
    assert c.array.min() == pytest.approx(1.9) and c.array.max() == pytest.approx(17.1)
    g = P.gamma(img2(), gamma=2.0)
    assert g.array[0, 0] == 0 and g.array[-1, -1] == 1 and g.array[2, 2] == pytest.approx((12 / 19) ** 2)


def test_window_presets_and_explicit():
    hu = Image(np.array([[-1000.0, -600.0], [40.0, 1000.0]]))
    lung = P.window(hu, preset="lung").array
    assert lung[0, 1] == pytest.approx(0.5) and lung[0, 0] == pytest.approx(350 / 1500)
    assert np.allclose(P.window(hu, level=0, width=2000).array, [[0.0, 0.2], [0.52, 1.0]])
    for name in ("brain", "lung", "abdomen", "bone"):
        assert name in P.WINDOW_PRESETS
    with pytest.raises(ConfigError, match="did you mean 'lung'"):
        P.window(hu, preset="lunk")
    with pytest.raises(ConfigError, match="level and width"):
        P.window(hu)


def test_equalize_and_clahe_2d_3d():
    img, _ = disc_phantom((32, 32))
    for fn in (P.equalize, P.clahe):
        out = fn(img)
        assert out.shape == img.shape and 0 <= out.array.min() and out.array.max() <= 1
    vol, _ = head_phantom((16, 24, 24))
    out = P.clahe(vol, kernel_size=8.0)
    assert out.shape == vol.shape and out.spacing == vol.spacing


def test_filters_keep_geometry_and_reduce_noise():
    img, truth = disc_phantom((48, 48), noise=0.3, seed=1)
    bg = truth.array == 0
    noise = img.array[bg].std()
    for fn, kw in [(P.gaussian, {"sigma": 1.5}), (P.median, {"radius": 2}), (P.bilateral, {}),
                   (P.nlmeans, {}), (P.anisotropic_diffusion, {"iterations": 5})]:
        out = fn(img, **kw)
        assert out.shape == img.shape and out.spacing == img.spacing, fn.__name__
        assert out.array[bg].std() < 0.8 * noise, fn.__name__
    assert img.array[bg].std() == noise  # input untouched


def test_gaussian_sigma_is_physical():
    a = np.zeros((21, 21), np.float32)
    a[10, 10] = 1
    out = P.gaussian(Image(a, (2.0, 1.0)), sigma=2.0).array
    # 2 mm is one pixel along axis 0 and two along axis 1: wider along axis 1
    assert out[10, 12] > out[12, 10]


def test_n4_removes_a_smooth_bias():
    vol, truth = head_phantom((24, 32, 32), noise=0.0, seed=0)
    wm = truth.array == 3
    before = vol.array[wm].std() / vol.array[wm].mean()
    out = P.n4(vol, shrink=2, iterations=20, levels=2)
    after = out.array[wm].std() / out.array[wm].mean()
    assert out.shape == vol.shape and after < before


def test_resample_image_and_label():
    img, truth = disc_phantom((40, 40), spacing=(1.0, 1.0), seed=0)
    down = P.resample(img, spacing=2.0)
    assert down.shape == (20, 20) and down.spacing == (2.0, 2.0) and down.origin == img.origin
    lab = Image(truth.array * 3, truth.spacing)
    up = P.resample(lab, spacing=(0.5, 0.5), label=True)
    assert up.shape == (80, 80) and set(np.unique(up.array)) <= {0, 3} and up.array.dtype == lab.array.dtype
    back = P.resample(up, spacing=1.0, label=True)
    assert np.mean(back.array == lab.array) > 0.98
    rgb = Image(np.stack([img.array] * 3), img.spacing)
    assert P.resample(rgb, spacing=(2, 2)).array.shape == (3, 20, 20)
    with pytest.raises(ConfigError, match="target spacing"):
        P.resample(img, spacing=(1, 2, 3))
    assert P.resample(img, spacing="2,1").shape == (20, 40)


def test_crop_and_uncrop_round_trip():
    a = np.zeros((10, 12), np.float32)
    a[3:6, 4:9] = 5
    img = Image(a, (2.0, 1.0), origin=(10.0, 20.0))
    c = P.crop_foreground(img, margin=2.0)
    assert c.shape == (5, 9) and c.origin == (10.0 + 2 * 2, 20.0 + 2)
    back = P.uncrop(c)
    assert np.array_equal(back.array, a) and back.origin == img.origin and "crop" not in back.meta
    with pytest.raises(InputError, match="crop record"):
        P.uncrop(img)
    with pytest.raises(InputError, match="empty"):
        P.crop_foreground(Image(np.zeros((4, 4))))


def test_select_channel():
    rgb = Image(np.arange(12.0).reshape(3, 2, 2), (1, 1), meta={"rgb": True})
    assert P.select_channel(rgb, index="green").array.tolist() == [[4, 5], [6, 7]]
    assert P.select_channel(rgb, index=2).array[0, 0] == 8
    with pytest.raises(ConfigError, match="did you mean 'green'"):
        P.select_channel(rgb, index="gren")
    with pytest.raises(InputError, match="does not exist"):
        P.select_channel(rgb, index=5)


def test_channel_aware():
    rgb = Image(np.stack([np.arange(16.0).reshape(4, 4), np.ones((4, 4)) * 7]), (1, 1))
    out = P.minmax(rgb)
    assert out.array.shape == (2, 4, 4) and out.array[0].max() == 1 and np.all(out.array[1] == 0)
