"""Dataset fingerprint: exact statistics on tiny hand-made datasets, and problem detection."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.errors import InputError
from medseg.fingerprint import describe_image, fingerprint, format_description, format_fingerprint
from medseg.image import Image
from medseg.io import load_dataset, write_image
from medseg.io.writing import write_dataset
from medseg.testing import make_dataset


@pytest.fixture
def messy(tmp_path):
    """Five cases, four of them with a different problem."""
    rng = np.random.default_rng(0)
    a = rng.normal(100, 10, (6, 7)).astype(np.float32)
    la = np.zeros((6, 7), np.uint8)
    la[1:3, 1:4] = 1
    la[4, 2:6] = 2
    b = rng.normal(50, 5, (6, 7)).astype(np.float32)
    b[0, 0] = np.nan
    c = rng.normal(80, 5, (6, 7)).astype(np.float32)
    e = rng.normal(70, 5, (6, 7)).astype(np.float32)
    img, lab = tmp_path / "images", tmp_path / "labels"
    write_image(Image(a), img / "a.nii.gz")
    write_image(Image(la), lab / "a.nii.gz")
    write_image(Image(b), img / "b.nii.gz")
    write_image(Image(np.zeros((6, 7), np.uint8)), lab / "b.nii.gz")  # empty label
    write_image(Image(c), img / "c.nii.gz")
    write_image(Image(np.zeros((5, 7), np.uint8)), lab / "c.nii.gz")  # wrong shape
    write_image(Image(a.copy()), img / "d.nii.gz")  # duplicate of a
    write_image(Image(la), lab / "d.nii.gz")
    write_image(Image(e), img / "e.nii.gz")
    write_image(Image(np.full((6, 7), 0.5, np.float32)), lab / "e.nii.gz")  # non-integer labels
    return tmp_path, {"a": a, "b": b, "c": c, "e": e, "la": la}


def test_problems_are_found_not_raised(messy):
    root, _ = messy
    fp = fingerprint(load_dataset(root))
    kinds = {(p["case"], p["kind"]) for p in fp["problems"]}
    assert kinds == {("b", "nonfinite"), ("b", "empty_label"), ("c", "shape_mismatch"), ("d", "duplicate"),
                     ("e", "bad_label_values")}
    assert fp["n_cases"] == 5 and isinstance(fp["n_cases"], int)
    json.dumps(fp)  # plain JSON


def test_statistics_are_exact(messy):
    root, arrays = messy
    fp = fingerprint(load_dataset(root))
    a, b, c, e, la = arrays["a"], arrays["b"], arrays["c"], arrays["e"], arrays["la"]
    every = np.concatenate([a.ravel(), b[np.isfinite(b)], c.ravel(), a.ravel(), e.ravel()]).astype(np.float64)
    ov = fp["intensity"][0]["overall"]
    assert ov["n_voxels"] == every.size
    assert ov["mean"] == pytest.approx(every.mean()) and ov["std"] == pytest.approx(every.std())
    assert ov["percentiles"]["50"] == pytest.approx(np.percentile(every, 50))
    assert ov["percentiles"]["99.5"] == pytest.approx(np.percentile(every, 99.5))
    fgv = np.concatenate([a[la > 0], a[la > 0]]).astype(np.float64)  # a and its duplicate d
    fg = fp["intensity"][0]["foreground"]
    assert fg["n_voxels"] == fgv.size and fg["min"] == pytest.approx(fgv.min())
    assert fg["percentiles"]["0.5"] == pytest.approx(np.percentile(fgv, 0.5))
    # labels from the three usable label maps (a, b, d)
    assert fp["labels"] == [0, 1, 2]
    n = 3 * la.size
    assert fp["label_fractions"]["1"] == pytest.approx(2 * 6 / n)
    assert fp["label_fractions"]["2"] == pytest.approx(2 * 4 / n)
    assert fp["label_cases"] == {"0": 3, "1": 2, "2": 2}
    assert fp["shape"] == {"median": [6.0, 7.0], "min": [6.0, 7.0], "max": [6.0, 7.0]}
    assert fp["dimensionality"] == 2 and fp["n_channels"] == 1


def test_spacing_roi_and_geometry_mismatch(tmp_path):
    rng = np.random.default_rng(3)
    cases = []
    for i, sp in enumerate([(3.0, 1.0, 1.0), (5.0, 0.5, 0.5), (4.0, 0.8, 0.8)]):
        img = Image(rng.normal(size=(4, 5, 6)).astype(np.float32), sp)
        lab = img.with_array((rng.random((4, 5, 6)) > 0.5).astype(np.uint8))
        roi = np.zeros((4, 5, 6), np.uint8)
        roi[: i + 1] = 1
        cases.append((f"c{i}", img, lab, img.with_array(roi)))
    root = write_dataset(cases, tmp_path / "ds", layout="folders", suffix=".nii.gz")
    fp = fingerprint(load_dataset(root))
    sp = fp["spacing"]  # NIfTI stores float32: 0.8 comes back as 0.800000011920929
    assert sp["median"] == pytest.approx([4.0, 0.8, 0.8]) and sp["min"] == pytest.approx([3.0, 0.5, 0.5])
    assert sp["max"] == pytest.approx([5.0, 1.0, 1.0])
    assert fp["roi_coverage"]["min"] == pytest.approx(0.25) and fp["roi_coverage"]["max"] == pytest.approx(0.75)
    assert fp["problems"] == []
    # a label written with another spacing is reported, not raised
    write_image(Image(np.ones((4, 5, 6), np.uint8), (9.0, 1.0, 1.0)), root / "labels" / "c1.nii.gz")
    fp = fingerprint(load_dataset(root))
    assert [(p["case"], p["kind"]) for p in fp["problems"]] == [("c1", "geometry_mismatch")]


def test_msd_unexpected_labels_unreadable_files_and_channels(tmp_path):
    rng = np.random.default_rng(4)
    cases = [(f"c{i}", Image(rng.normal(size=(2, 3, 4, 5)).astype(np.float32), (1.0, 1.0, 1.0)),
              Image(rng.integers(0, 2, (3, 4, 5)).astype(np.uint8)), None) for i in range(3)]
    root = write_dataset(cases, tmp_path / "msd", layout="msd", label_names={0: "bg", 1: "organ"},
                         channel_names=["CT", "PET"])
    write_image(Image(np.full((3, 4, 5), 3, np.uint8)), root / "labelsTr" / "c1.nii.gz")
    (root / "imagesTr" / "c2_0001.nii.gz").write_bytes(b"broken")
    fp = fingerprint(load_dataset(root))
    kinds = [(p["case"], p["kind"]) for p in fp["problems"]]
    assert ("c1", "unexpected_label") in kinds and ("c2", "unreadable") in kinds
    assert fp["modality"] == ["CT", "PET"] and fp["n_channels"] == 2 and fp["n_read"] == 2
    text = format_fingerprint(fp)
    assert "unexpected_label" in text and "c2.nii.gz" not in text.splitlines()[0]


def test_text_output_is_aligned_and_complete(messy):
    root, _ = messy
    text = format_fingerprint(fingerprint(load_dataset(root)))
    heads = [ln.split()[0] for ln in text.splitlines() if ln and not ln.startswith(" ")]
    for key in ("dataset", "cases", "shape", "spacing", "intensity", "labels", "problems"):
        assert key in heads
    assert "shape_mismatch" in text and "duplicate" in text


def test_seeded_sampling_is_reproducible(tmp_path):
    rng = np.random.default_rng(5)
    cases = [(f"c{i}", Image(rng.normal(size=(60, 70)).astype(np.float32)), Image(np.ones((60, 70), np.uint8)), None)
             for i in range(2)]
    root = write_dataset(cases, tmp_path / "d", layout="folders")
    ds = load_dataset(root)
    a = fingerprint(ds, samples_per_case=500, seed=1)
    b = fingerprint(ds, samples_per_case=500, seed=1)
    assert a["intensity"] == b["intensity"]
    assert a["intensity"][0]["overall"]["n_voxels"] == 2 * 60 * 70  # exact moments, sampled percentiles


def test_one_fingerprint_for_inspect_and_the_planner(tmp_path):
    from medseg.train.planner import make_plan

    ds = load_dataset(make_dataset(tmp_path / "d", kind="fundus", n=3, shape=(40, 36)))
    fp = fingerprint(ds)
    assert fingerprint(ds, strict=True) == fp  # clean data: strict only changes what happens to problems
    assert fp["dims"] == fp["dimensionality"] == 2 and fp["n_channels"] == 3 and fp["has_roi"]
    assert fp["shapes"] == [r["shape"] for r in fp["cases"]] == [[40, 36]] * 3
    assert fp["spacings"] == [r["spacing"] for r in fp["cases"]]
    total = sum(fp["class_counts"].values())
    assert {k: v / total for k, v in fp["class_counts"].items()} == pytest.approx(fp["label_fractions"])
    assert len(fp["fg_stats"]) == 3 and fp["declared_modality"] == []
    # the foreground statistics the planner reads agree with inspect's (exact when nothing is sampled)
    for c, (lo, hi, mean, std) in enumerate(fp["fg_stats"]):
        fg = fp["intensity"][c]["foreground"]
        assert mean == pytest.approx(fg["mean"], rel=1e-5) and std == pytest.approx(fg["std"], rel=1e-4)
        assert lo == pytest.approx(fg["percentiles"]["0.5"], rel=1e-5)
        assert hi == pytest.approx(fg["percentiles"]["99.5"], rel=1e-5)
    plan = make_plan(fp, measure=False)
    assert plan.in_channels == 3 and plan.use_roi
    json.dumps(fp)


def test_strict_fingerprint_raises_at_the_first_case_training_cannot_use(messy, tmp_path):
    root, _ = messy
    with pytest.raises(InputError, match="case 'b': the image contains 1 NaN"):
        fingerprint(load_dataset(root), strict=True)
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    write_image(Image(np.zeros((4, 4), np.float32)), empty / "images" / "x.nii.gz")
    with pytest.raises(InputError, match="no label map"):
        fingerprint(load_dataset(empty), strict=True)


def test_describe_one_image(tmp_path):
    write_image(Image(np.arange(12, dtype=np.float32).reshape(3, 4), spacing=(2.0, 0.5)), tmp_path / "x.nii.gz")
    d = describe_image(tmp_path / "x.nii.gz")
    assert d["shape"] == [3, 4] and d["spacing"] == [2.0, 0.5] and d["dimensionality"] == 2
    s = d["intensity"][0]
    assert (s["min"], s["max"], s["mean"], s["p50"], s["nonfinite"]) == (0.0, 11.0, 5.5, 5.5, 0)
    text = format_description(d)
    assert text.splitlines()[1].startswith("shape      3 x 4  (2D, 1 channel(s), float32)")
    assert "values     min 0  p0.5 0.055  p50 5.5" in text
    json.dumps(d)


def test_mixed_dtypes_and_intensity_ranges_are_problems(tmp_path):
    """As in MSD Hippocampus: uint8 and float32 cases with maxima from 112 to 1.56e6."""
    import numpy as np

    from medseg.fingerprint import fingerprint
    from medseg.image import Image
    from medseg.io import load_dataset, write_image

    rng = np.random.default_rng(0)
    for i, (dtype, scale) in enumerate([(np.uint8, 100), (np.float32, 1e6), (np.float32, 2e6)]):
        a = (rng.random((8, 12, 12)) * scale).astype(dtype)
        write_image(Image(a), tmp_path / "images" / f"c{i}.nii.gz")
        write_image(Image((a > a.mean()).astype(np.uint8)), tmp_path / "labels" / f"c{i}.nii.gz")
    kinds = {p["kind"] for p in fingerprint(load_dataset(tmp_path))["problems"]}
    assert {"mixed_dtypes", "intensity_ranges"} <= kinds
