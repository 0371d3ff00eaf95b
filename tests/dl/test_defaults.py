"""Data-derived defaults: augmentation strength, whole-volume patches, padding, ONNX backend."""
import dataclasses

import numpy as np
import pytest
import torch

from medseg.dl.plan import Plan
from medseg.train.data import PatchSampler, PreparedCase
from medseg.train.planner import FULL_AUG_PASSES, augmentation_strength, make_plan


def _fp(shapes, n=None):
    return {"dims": 3, "n_cases": n or len(shapes), "shapes": shapes, "spacings": [[1.0, 1.0, 1.0]] * len(shapes),
            "n_channels": 1, "declared_modality": ["MRI"], "fg_stats": [[0.0, 1.0, 0.5, 0.2]],
            "class_counts": {"0": 1000, "1": 50}, "label_names": {}, "has_roi": False}


def test_augmentation_strength_grows_with_passes_over_the_data():
    fp = _fp([[20, 20, 20]] * 10)
    plan = Plan(dims=3, patch_size=(16, 16, 16), batch_size=2)
    per_step = 2 * 16 ** 3 / (10 * 20 ** 3)          # passes over the training voxels per step
    half = FULL_AUG_PASSES / 2 / per_step
    assert augmentation_strength(plan, fp, half) == pytest.approx(0.5, abs=1e-3)
    assert augmentation_strength(plan, fp, 10 * half) == 1.0
    assert augmentation_strength(plan, fp, 0) == 0.0
    assert augmentation_strength(plan, fp, None) == 1.0  # unknown schedule: full augmentation
    # more cases: the same schedule sees each case less often -> weaker augmentation
    assert augmentation_strength(plan, _fp([[20, 20, 20]] * 10, n=100), half) < 0.1


def test_epoch_schedule_sets_strength_and_override_wins():
    fp = _fp([[20, 20, 20]] * 10)
    short = make_plan(fp, measure=False, train_steps=10)
    long = make_plan(fp, measure=False, train_steps=100000)
    assert short.aug_strength < long.aug_strength == 1.0
    assert make_plan(fp, measure=False, train_steps=10, overrides={"aug_strength": 0.7}).aug_strength == 0.7


def test_small_volumes_get_a_whole_volume_patch():
    shapes = [[30, 40, 30]] * 8 + [[38, 46, 35]]
    plan = make_plan(_fp(shapes), measure=False)
    assert all(p >= s for p, s in zip(plan.patch_size, (38, 46, 35)))
    # a large outlier is not worth a patch more than twice the median one
    big = make_plan(_fp([[30, 40, 30]] * 8 + [[90, 120, 90]]), measure=False)
    assert big.patch_size == (32, 40, 32)


def test_crops_pad_with_zero_like_the_inferer_and_mask_the_padding():
    img = np.full((1, 10, 10), 5.0, np.float32)
    lab = np.zeros((10, 10), np.uint8)
    lab[4:6, 4:6] = 1
    case = PreparedCase("c", img, lab, None, {1: np.argwhere(lab == 1).astype(np.int32)}, None)
    plan = Plan(dims=2, patch_size=(16, 16), batch_size=1, fg_oversample=0.0, mirror_axes=())
    x, _, m = PatchSampler([case], plan, seed=0, augment=False).batch(0)
    assert x.shape == (1, 1, 16, 16)
    assert set(np.unique(x).tolist()) == {0.0, 5.0}       # padding 0, image 5
    np.testing.assert_array_equal(m[0] > 0, x[0, 0] == 5.0)  # loss only inside the image


def test_strength_scales_flips_too():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(1, 24, 24)).astype(np.float32)
    lab = (img[0] > 1).astype(np.uint8)
    case = PreparedCase("c", img, lab, None, {1: np.argwhere(lab == 1).astype(np.int32)}, None)
    plan = Plan(dims=2, patch_size=(24, 24), batch_size=1, fg_oversample=0.0, mirror_axes=(0, 1), rot90=True,
                aug_strength=0.0)
    s = PatchSampler([case], plan, seed=0, augment=True)
    for step in range(20):  # strength 0: the plain crop
        x, _, _ = s.batch(step)
        np.testing.assert_array_equal(x[0], img)
    full = PatchSampler([case], dataclasses.replace(plan, aug_strength=1.0, rot90=False), seed=0, augment=True)
    changed = 0
    for step in range(20):
        _, y, _ = full.batch(step)
        assert set(np.unique(y).tolist()) <= {0, 1}
        changed += not np.array_equal(y[0], lab)
    assert changed > 5


def test_onnx_backend_matches_torch():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from medseg.infer.predictor import Predictor
    from medseg.nets import create_net

    plan = Plan(dims=2, in_channels=1, n_classes=2, patch_size=(32, 32), channels=(4, 8, 16), num_res_units=1,
                mirror_axes=(0, 1))
    torch.manual_seed(0)
    net = create_net("unet", spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), num_res_units=1,
                     norm="instance")
    x = np.random.default_rng(0).normal(size=(1, 50, 45)).astype(np.float32)
    a = Predictor([net], plan, tta=False, overlap=0.25, device="cpu", channels_last=False).probabilities(x)
    b = Predictor([net], plan, tta=False, overlap=0.25, device="cpu", backend="onnx").probabilities(x)
    assert a.shape == b.shape == (2, 50, 45)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_unknown_backend_is_a_config_error():
    from medseg.errors import ConfigError
    from medseg.infer.predictor import Predictor

    with pytest.raises(ConfigError, match="backend"):
        Predictor([torch.nn.Identity()], Plan(patch_size=(8, 8)), backend="tensorrt", device="cpu")


def test_augmentation_workers_leave_a_core_for_training(monkeypatch):
    import os

    from medseg.train.loop import augmentation_workers

    assert augmentation_workers(3) == 3 and augmentation_workers(0) == 0
    for cores, expected in ((1, 1), (2, 1), (3, 2), (16, 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert augmentation_workers(None) == expected
        assert augmentation_workers(None, "cuda") == {1: 1, 2: 1, 3: 2, 16: 8}[cores]


def test_image_window_covers_the_padded_image_and_respects_the_memory_bound(tiny):
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    p = Predictor([net], plan, tta=False, device="cpu", window="image", channels_last=False)
    assert p.window_size((50, 45)) == [52, 48]  # padded up to the network's divisor (4)
    assert p.window_size((20, 10)) == [32, 32]  # never below the patch
    small = Predictor([net], plan, tta=False, device="cpu", window="image", max_window_voxels=64 * 64)
    w = small.window_size((200, 100))
    assert np.prod(w) <= 64 * 64 and all(a >= 32 and a % 4 == 0 for a in w)
    assert Predictor([net], plan, device="cpu").window_size((200, 100)) == [32, 32]
    x = np.random.default_rng(0).normal(size=(1, 50, 45)).astype(np.float32)
    a = p.probabilities(x)
    # one window = one forward pass of the whole (zero-padded) image
    with torch.inference_mode():
        ref = torch.softmax(net(torch.nn.functional.pad(torch.from_numpy(x)[None], (1, 2, 1, 1))), 1)[0, :, 1:51, 1:46]
    assert a.shape == (2, 50, 45)
    np.testing.assert_allclose(a, ref.numpy(), atol=1e-5)
    b = small.probabilities(np.random.default_rng(1).normal(size=(1, 200, 100)).astype(np.float32))
    assert b.shape == (2, 200, 100) and np.allclose(b.sum(0), 1, atol=1e-5)


def test_unknown_window_is_a_config_error():
    from medseg.errors import ConfigError
    from medseg.infer.predictor import Predictor

    with pytest.raises(ConfigError, match="window"):
        Predictor([torch.nn.Identity()], Plan(patch_size=(8, 8)), window="huge", device="cpu")


def test_auto_backend_is_onnx_only_with_one_thread(tiny):
    from medseg.infer.onnx_runtime import onnx_available
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert Predictor([net], plan, device="cpu", backend="auto")._onnx is None
        torch.set_num_threads(1)
        assert (Predictor([net], plan, device="cpu", backend="auto")._onnx is not None) == onnx_available()
    finally:
        torch.set_num_threads(n)


def test_in_place_softmax_and_tta_average_match_the_plain_computation(tiny):
    from monai.inferers import sliding_window_inference

    from medseg.infer.predictor import Predictor, _softmax_
    from medseg.infer.windows import window_overlaps

    t = torch.randn(2, 3, 5, 7)
    np.testing.assert_allclose(_softmax_(t.clone()).numpy(), torch.softmax(t, 1).numpy(), atol=1e-6)
    plan, net = tiny()
    plan = dataclasses.replace(plan, aug_strength=1.0)
    x = np.random.default_rng(2).normal(size=(1, 70, 50)).astype(np.float32)
    p = Predictor([net], plan, tta=True, overlap=0.5, device="cpu").probabilities(x)
    ref = 0
    with torch.inference_mode():
        for flip in [(), (2,), (3,), (2, 3)]:
            xi = torch.flip(torch.from_numpy(x)[None], flip) if flip else torch.from_numpy(x)[None]
            lo = sliding_window_inference(xi, plan.patch_size, 4, net, overlap=window_overlaps((70, 50), (32, 32), 0.5),
                                          mode="gaussian",
                                          sigma_scale=0.125, padding_mode="constant")
            pr = torch.softmax(lo, 1)
            ref = ref + (torch.flip(pr, flip) if flip else pr)
    np.testing.assert_allclose(p, (ref / 4)[0].numpy(), atol=1e-5)


def test_large_volumes_are_stitched_in_cpu_memory_when_the_gpu_is_short(tiny, monkeypatch):
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    p = Predictor([net], plan, tta=False, device="cpu")
    x = torch.zeros((1, 1, 100, 100))
    assert p._output_device(x).type == "cpu"
    p.device = torch.device("cuda")  # only the decision is tested here (no GPU needed)
    need = 4 * 4 * plan.n_classes * 100 * 100
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * need, 10 * need))
    assert p._output_device(x).type == "cuda"
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * need - 1, 10 * need))
    assert p._output_device(x).type == "cpu"


def test_windows_per_pass_follow_the_device_and_its_free_memory(tiny, monkeypatch):
    from medseg.infer.predictor import Predictor

    plan, net = tiny()
    p = Predictor([net], plan, tta=False, device="cpu")
    assert p._batch_voxels(2) == 2 ** 17 and p._batch_voxels(3) == 2 ** 19
    p.device = torch.device("cuda")  # only the decision is tested here (no GPU needed)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (80 * 2 ** 30, 80 * 2 ** 30))
    assert p._batch_voxels(3) == 2 ** 22 and p._batch_voxels(2) == 2 ** 20
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * 2 ** 30, 4 * 2 ** 30))
    assert p._batch_voxels(3) == 2 ** 20  # 2 GiB free: 1M voxels at 2 KiB each
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 ** 20, 4 * 2 ** 30))
    assert p._batch_voxels(3) == 2 ** 19 and p._batch_voxels(2) == 2 ** 18  # never below the floor
