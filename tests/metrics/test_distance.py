"""Surface-distance metrics: hand-computed cases and property tests against MONAI.

MONAI rounds surface distances to float32, so values are compared with
``rtol=1e-6, atol=1e-6`` (float32 carries ~7 significant digits).
"""
import math
import warnings

import numpy as np
import pytest
from scipy import ndimage as ndi

from medseg.errors import GeometryError, InputError
from medseg.image import Image
from medseg.metrics.distance import assd, distance_metrics, hausdorff, hd95, nsd, surface, surface_distances


def test_surface_matches_scipy_erosion():
    rng = np.random.default_rng(1)
    for shape in [(9, 11), (6, 7, 8)]:
        m = rng.random(shape) > 0.4
        assert np.array_equal(surface(m), m ^ ndi.binary_erosion(m))


def test_hand_computed_squares_anisotropic():
    a = np.zeros((8, 8), int)
    a[2:5, 2:5] = 1
    b = np.zeros((8, 8), int)
    b[2:5, 3:6] = 1  # shifted one column; column spacing 2 mm
    d = surface_distances(a, b, spacing=(1.0, 2.0))
    # a's surface: 8 voxels; those in columns 3,4 lie on b's surface (0), except (3,3)? (3,3) is interior of a.
    # a surface voxels: rows 2,4 cols 2..4 and (3,2),(3,4). b surface: rows 2,4 cols 3..5 and (3,3),(3,5).
    assert sorted(d.pred_to_truth.tolist()) == [0, 0, 0, 0, 1, 2, 2, 2]
    assert sorted(d.truth_to_pred.tolist()) == [0, 0, 0, 0, 1, 2, 2, 2]
    assert hausdorff(a, b, spacing=(1, 2)) == 2.0
    assert assd(a, b, spacing=(1, 2)) == pytest.approx(7 / 8)
    assert nsd(a, b, spacing=(1, 2), tolerance=1.0) == pytest.approx(10 / 16)
    assert hd95(a, b, spacing=(1, 2)) == 2.0


def test_spacing_taken_from_images_and_roi_keeps_surface_inside():
    a = np.zeros((10, 10), np.uint8)
    a[2:6, 2:6] = 1
    b = np.roll(a, 3, axis=0)
    ia, ib = Image(a, spacing=(0.5, 1.0)), Image(b, spacing=(0.5, 1.0))
    assert hausdorff(ia, ib) == pytest.approx(1.5)
    roi = np.zeros((10, 10), np.uint8)
    roi[:, :4] = 1
    d = surface_distances(a, b, roi=roi)
    assert d.pred_to_truth.size == int((surface(a > 0) & (roi > 0)).sum())


def test_empty_conventions():
    z = np.zeros((6, 6), int)
    o = z.copy()
    o[2:4, 2:4] = 1
    both = distance_metrics(z, z)
    assert all(math.isnan(v) for v in both.values())
    one = distance_metrics(z, o)
    assert one["hausdorff"] == math.inf and one["hd95"] == math.inf and one["assd"] == math.inf and one["nsd"] == 0
    assert distance_metrics(o, z)["nsd"] == 0


def test_bad_inputs():
    with pytest.raises(GeometryError):
        hd95(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(InputError, match="tolerance"):
        nsd(np.ones((4, 4), int), np.ones((4, 4), int), tolerance=-1)
    with pytest.raises(InputError, match="spacing"):
        hd95(np.ones((4, 4), int), np.ones((4, 4), int), spacing=(1, 2, 3))


def _blob(shape, seed, sigma=2.0):
    r = np.random.default_rng(seed)
    return ndi.gaussian_filter(r.standard_normal(shape), sigma) > 0


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dim", [2, 3])
def test_matches_monai(seed, dim):
    torch = pytest.importorskip("torch")
    mm = pytest.importorskip("monai.metrics")
    from monai.metrics.utils import get_edge_surface_distance
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(12, 40, size=dim)) if dim == 2 else tuple(rng.integers(8, 22, size=dim))
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, size=dim))
    a = _blob(shape, seed)
    b = _blob(shape, seed + 50) | (ndi.binary_dilation(a) if seed % 2 else a)
    if not a.any() or not b.any():
        pytest.skip("degenerate draw")
    tol = float(rng.uniform(0.5, 3.0))
    ta, tb = (torch.as_tensor(x[None, None].astype(np.float32)) for x in (a, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = {
            "hausdorff": mm.compute_hausdorff_distance(ta, tb, include_background=True, spacing=spacing).item(),
            "hd95": mm.compute_hausdorff_distance(ta, tb, include_background=True, spacing=spacing,
                                                  percentile=95).item(),
            "assd": mm.compute_average_surface_distance(ta, tb, include_background=True, symmetric=True,
                                                        spacing=spacing).item(),
            "nsd": mm.compute_surface_dice(ta, tb, [tol], include_background=True, spacing=spacing).item(),
        }
        # MONAI's own directed distances (float32), for a float64 percentile: torch.quantile in
        # float32 rounds the interpolation position, which can move HD95 by ~1e-6 relative.
        _, (d_pt, d_tp), _ = get_edge_surface_distance(ta[0, 0].bool(), tb[0, 0].bool(), spacing=spacing,
                                                       symmetric=True)
    d_pt, d_tp = d_pt.numpy().astype(np.float64), d_tp.numpy().astype(np.float64)
    ours = distance_metrics(a.astype(np.uint8), b.astype(np.uint8), spacing=spacing, tolerance=tol)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, rel=1e-6 if k != "hd95" else 5e-6, abs=1e-6), k
    d = surface_distances(a.astype(np.uint8), b.astype(np.uint8), spacing=spacing)
    np.testing.assert_allclose(np.sort(d.pred_to_truth), np.sort(d_pt), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.sort(d.truth_to_pred), np.sort(d_tp), rtol=1e-6, atol=1e-6)
    assert ours["hd95"] == pytest.approx(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)), rel=1e-6, abs=1e-6)


def test_far_points_use_exact_fallback():
    # Two tiny objects far apart: every distance exceeds the search ball and goes to the k-d tree.
    a = np.zeros((5, 40, 40), int)
    b = a.copy()
    a[2, 2, 2] = 1
    b[2, 30, 35] = 1
    assert hausdorff(a, b, spacing=(1, 0.5, 2)) == pytest.approx(math.hypot(28 * 0.5, 33 * 2))


def test_two_thread_path_equals_one_thread(monkeypatch):
    """Large volumes are split over two threads; the distances must not change."""
    from scipy import ndimage as ndi

    from medseg.metrics import _surface
    from medseg.metrics import distance as dist

    rng = np.random.default_rng(3)
    f = ndi.gaussian_filter(rng.standard_normal((104, 104, 104)), 2)
    truth = np.abs(f) < 0.01
    pred = np.roll(truth, 1, axis=2) | (rng.random(truth.shape) < 0.001)
    pred[:30] = False  # a missed region: many voxels farther than the search ball
    monkeypatch.setenv("MEDSEG_NUM_THREADS", "1")
    one = dist.surface_distances(pred, truth, spacing=(2.0, 0.8, 0.8))
    monkeypatch.delenv("MEDSEG_NUM_THREADS")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    two = dist.surface_distances(pred, truth, spacing=(2.0, 0.8, 0.8))
    assert _surface._pool() is not None
    np.testing.assert_array_equal(one.pred_to_truth, two.pred_to_truth)
    np.testing.assert_array_equal(one.truth_to_pred, two.truth_to_pred)
    assert np.isfinite(one.hausdorff(95)) and one.pred_to_truth.max() > 3.0
