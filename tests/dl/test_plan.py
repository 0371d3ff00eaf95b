import dataclasses

import numpy as np
import pytest

from medseg.dl.plan import Plan, plan_from_dict
from medseg.errors import ConfigError, InputError
from medseg.fingerprint import fingerprint
from medseg.io import load_dataset
from medseg.testing import make_dataset
from medseg.train.planner import make_plan


@pytest.fixture(scope="module")
def fundus(tmp_path_factory):
    return load_dataset(make_dataset(tmp_path_factory.mktemp("f") / "d", kind="fundus", n=3, shape=(80, 72)))


def test_fingerprint_and_plan_2d_rgb_roi(fundus):
    fp = fingerprint(fundus, strict=True)
    assert fp["dims"] == 2 and fp["n_channels"] == 3 and fp["has_roi"]
    assert set(fp["class_counts"]) == {"0", "1"}
    plan = make_plan(fp, measure=False)
    assert plan.dims == 2 and plan.in_channels == 3 and plan.n_classes == 2
    assert plan.use_roi and plan.normalisation == ("zscore",) * 3
    # patch covers the median image, rounded up to the network's divisor
    div = 2 ** (len(plan.channels) - 1)
    assert all(p % div == 0 and p >= s for p, s in zip(plan.patch_size, (80, 72)))
    # Dice+CE (default): the Dice term balances classes, no CE weights; CE alone: the
    # rarer class gets the larger weight
    assert plan.class_weights == ()
    ce = make_plan(fp, measure=False, overrides={"loss": "ce"})
    assert ce.class_weights[1] > ce.class_weights[0] == 1.0
    # JSON round trip
    assert plan_from_dict(plan.to_json()) == plan


def test_plan_overrides_and_unknown_key(fundus):
    fp = fingerprint(fundus, strict=True)
    plan = make_plan(fp, overrides={"patch_size": (32, 32), "batch_size": 3, "net": "dynunet", "lr": 0.01},
                     measure=False)
    assert plan.patch_size == (32, 32) and plan.batch_size == 3 and plan.net == "dynunet" and plan.lr == 0.01
    with pytest.raises(ConfigError, match="did you mean"):
        make_plan(fp, overrides={"patch_sise": (32, 32)}, measure=False)


def _fp3d(spacings, modality=("CT",)):
    return {"dims": 3, "n_cases": len(spacings), "shapes": [[40, 100, 100]] * len(spacings),
            "spacings": spacings, "n_channels": 1, "declared_modality": list(modality),
            "fg_stats": [[-100.0, 300.0, 50.0, 80.0]], "class_counts": {"0": 1000, "1": 10, "2": 40},
            "label_names": {"1": "liver"}, "has_roi": False}


def test_plan_3d_ct_spacing_and_classes():
    fp = _fp3d([[2.5, 0.8, 0.8], [3.0, 0.7, 0.7], [2.0, 0.9, 0.9]])
    plan = make_plan(fp, measure=False)
    assert plan.dims == 3 and plan.n_classes == 3
    assert plan.target_spacing == (2.5, 0.8, 0.8)          # median per axis
    assert plan.normalisation == ("ct",) and plan.ct_stats[0] == (-100.0, 300.0, 50.0, 80.0)
    assert plan.class_names["1"] == "liver"
    # the patch follows the physical median shape: fewer voxels along the coarse axis
    assert plan.patch_size[0] < plan.patch_size[1]
    mr = make_plan(_fp3d([[1.0, 1.0, 1.0]], modality=("MRI",)), measure=False)
    assert mr.normalisation == ("zscore",)


def test_plan_time_budget_picks_smaller_net_for_smaller_budget(fundus):
    fp = fingerprint(fundus, strict=True)
    ov = {"patch_size": (32, 32)}
    big = make_plan(fp, overrides=ov, time_budget_s=1e6, min_steps=1)
    small = make_plan(fp, overrides=ov, time_budget_s=1e-3, min_steps=10 ** 9)
    assert big.step_seconds > 0 and small.step_seconds > 0
    assert sum(big.channels) * big.batch_size > sum(small.channels) * small.batch_size


def test_plan_time_budget_times_deep_supervision_networks(fundus):
    """dynunet returns one output per head in training: timing its steps must not trip on that."""
    fp = fingerprint(fundus, strict=True)
    plan = make_plan(fp, overrides={"patch_size": (32, 32), "net": "dynunet"}, time_budget_s=1e6, min_steps=1)
    assert plan.net == "dynunet" and plan.step_seconds > 0


def test_plan_background_only_is_an_error():
    fp = _fp3d([[1, 1, 1]])
    fp["class_counts"] = {"0": 100}
    with pytest.raises(InputError, match="only background"):
        make_plan(fp, measure=False)


def test_plan_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Plan().dims = 3  # type: ignore[misc]
    assert np.isfinite(Plan().lr)


def test_label_values_missing_from_the_training_labels_are_warned_about(fundus, caplog):
    fp = dict(fingerprint(fundus, strict=True))
    fp["class_counts"] = {"0": 1000, "2": 50}
    with caplog.at_level("WARNING", logger="medseg.train.planner"):
        plan = make_plan(fp, measure=False)
    assert plan.n_classes == 3
    assert "label value(s) 1 never occur" in caplog.text


def test_plan_shrinks_batch_then_patch_for_a_network_too_slow_for_the_budget(monkeypatch):
    """A step cost proportional to batch x patch voxels (no real timing): with a budget of a
    few steps the batch halves to 2, then the longest patch axis halves, until FEW_STEPS fit."""
    from medseg.train import planner

    timed = []

    def fake_time(plan, device, n=2):
        timed.append((plan.batch_size, tuple(plan.patch_size)))
        return 1e-6 * plan.batch_size * float(np.prod(plan.patch_size))

    monkeypatch.setattr(planner, "_time_step", fake_time)
    fp = _fp3d([[1.0, 1.0, 1.0]] * 3, modality=("MRI",))
    fp["shapes"] = [[64, 96, 64]] * 3
    wide = make_plan(fp, time_budget_s=1e9, measure=True)
    assert wide.batch_size >= 2 and len(timed) >= 1
    timed.clear()
    vox = 2 * 32 * 48 * 32  # the step time of batch 2, patch 32x48x32 ...
    budget = planner.FEW_STEPS * 1e-6 * vox  # ... is exactly what the budget allows FEW_STEPS of
    plan = make_plan(fp, time_budget_s=budget, measure=True)
    assert plan.batch_size == 2 and budget / plan.step_seconds >= planner.FEW_STEPS - 1e-6
    assert plan.patch_size == (32, 48, 32)  # the longest axis halved each time: 96, then 64, then 64
    assert timed[-1] == (2, (32, 48, 32))
    # a patch or batch the user gave is kept, however few steps it gets
    kept = make_plan(fp, overrides={"patch_size": (64, 96, 64)}, time_budget_s=budget, measure=True)
    assert kept.patch_size == (64, 96, 64)


def test_plan_batch_choice_is_not_decided_by_one_slow_timing(monkeypatch):
    """A burst of other work slows the first timing of the reference batch three-fold; the
    cost per sample is the same at every batch size, so the reference batch must stay (the
    planner re-times it while comparing and keeps the fastest timing of each)."""
    from medseg.train import planner

    calls = {}

    def fake_time(plan, device, n=3):
        calls[plan.batch_size] = calls.get(plan.batch_size, 0) + 1
        burst = 3.0 if plan.batch_size == 2 and calls[2] == 1 else 1.0
        return 0.01 * plan.batch_size * burst

    monkeypatch.setattr(planner, "_time_step", fake_time)
    fp = _fp3d([[1.0, 1.0, 1.0]] * 3, modality=("MRI",))
    fp["shapes"] = [[32, 32, 32]] * 3
    plan = make_plan(fp, time_budget_s=10.0, measure=True)
    assert calls[2] >= 2  # the reference batch was timed again
    assert plan.batch_size == 2 and plan.step_seconds == 0.02
