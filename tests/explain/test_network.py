"""Saliency of networks: it concentrates on the object that decides the output, for every method."""
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from medseg.dl.network import build_net
from medseg.dl.plan import Plan
from medseg.errors import ConfigError, InputError
from medseg.explain import explain_model
from medseg.explain.network import NETWORK_METHODS, NetworkExplainer
from medseg.image import Image
from medseg.infer.predictor import Predictor
from medseg.testing import disc_phantom


@pytest.mark.parametrize("method", NETWORK_METHODS)
def test_saliency_concentrates_on_the_object_that_decides_the_output(unet_model, method):
    model, _ = unet_model
    img, truth = disc_phantom((64, 64), n_objects=1, seed=5, noise=0.05)
    obj = truth.array > 0
    ex = explain_model(model, img, method=method, device="cpu")
    pred = ex.labels == 1
    assert 2 * (pred & obj).sum() / (pred.sum() + obj.sum()) > 0.85  # the model finds the object
    s = ex.saliency
    assert s.shape == img.shape and s.dtype == np.float32 and s.min() >= 0 and s.max() == pytest.approx(1.0)
    near = ndi.binary_dilation(obj, iterations=3)  # the object and its edge: 11 % of the image
    assert near.mean() < 0.12
    mass = s[near].sum() / s.sum()
    density = (mass / near.mean()) / (max(1 - mass, 1e-6) / (1 - near.mean()))
    # integrated gradients also credit the background's contrast with the object, through the
    # instance normalisation every pixel takes part in (0.62 here; Grad-CAM 0.99, occlusion 0.88)
    assert mass > {"integrated-gradients": 0.55}.get(method, 0.7), (method, mass)
    assert density > 8, (method, density)


def _plan(dims=2, **kw):
    return Plan(dims=dims, patch_size=(32,) * dims if dims == 2 else (16, 16, 16), channels=(4, 8, 16),
                num_res_units=1, normalisation=("zscore",), ct_stats=((),), **kw)


def test_windows_stitch_as_the_predictor_does():
    plan = _plan()
    torch.manual_seed(0)
    pred = Predictor([build_net(plan)], plan, tta=False, device="cpu", overlap=0.5)
    ex = NetworkExplainer(pred)
    a = np.random.default_rng(0).normal(size=(1, 70, 45)).astype(np.float32)
    x, crop = ex._padded(a)
    wins = ex._windows(tuple(x.shape[2:]))
    assert len(wins) > 4  # the image is larger than the patch
    with torch.no_grad():
        mine = torch.softmax(ex._stitch(pred.nets[0], x, wins), dim=1)[0].numpy()
    np.testing.assert_allclose(mine[(slice(None), *crop)], pred.probabilities(a), atol=1e-4)


def test_windowed_input_gradient_is_the_gradient_of_the_stitched_target():
    plan = _plan()
    torch.manual_seed(0)
    pred = Predictor([build_net(plan)], plan, tta=False, device="cpu")
    ex = NetworkExplainer(pred)
    a = np.random.default_rng(1).normal(size=(1, 50, 40)).astype(np.float32)
    x, _ = ex._padded(a)
    wins = ex._windows(tuple(x.shape[2:]))
    net = pred.nets[0]
    region = torch.zeros((1, 1, *x.shape[2:]), dtype=torch.bool)
    region[..., 10:30, 5:25] = True
    with torch.no_grad():
        z = ex._stitch(net, x, wins)
    got = ex._input_gradient(x, wins, z, region, 1, net)
    xr = x.clone().requires_grad_(True)
    zz = ex._stitch(net, xr, wins)
    target = ((zz[:, 1] - zz[:, 0]) * region[:, 0]).sum()
    target.backward()
    np.testing.assert_allclose(got.numpy(), xr.grad.numpy(), atol=1e-5)


@pytest.mark.parametrize("method", NETWORK_METHODS)
def test_3d_resampled_image_gives_a_map_on_its_own_grid(method):
    plan = _plan(3, target_spacing=(1.0, 1.0, 1.0))
    torch.manual_seed(0)
    pred = Predictor([build_net(plan)], plan, tta=False, device="cpu")
    img = Image(np.random.default_rng(0).normal(size=(10, 20, 18)).astype(np.float32), spacing=(2.0, 1.0, 1.0))
    res = NetworkExplainer(pred, steps=2, patch=8).explain(img, 1, method)
    assert res.saliency.shape == img.shape and res.saliency.dtype == np.float32
    assert 0 <= res.saliency.min() and res.saliency.max() <= 1
    assert res.labels.shape == img.shape


def test_bad_layer_method_and_label_are_clear_errors():
    plan = _plan()
    pred = Predictor([build_net(plan)], plan, tta=False, device="cpu")
    with pytest.raises(ConfigError, match="unknown Grad-CAM layer 'nope'.*model"):
        NetworkExplainer(pred, layer="nope")
    img = Image(np.zeros((32, 32), np.float32))
    with pytest.raises(ConfigError, match="unknown explanation method"):
        NetworkExplainer(pred).explain(img, 1, "lime")
    with pytest.raises(InputError, match="not a class"):
        NetworkExplainer(pred).explain(img, 5, "gradcam")
