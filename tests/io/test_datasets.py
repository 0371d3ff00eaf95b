"""Dataset layouts and pairing rules: folders, explicit folders, npy tutorial stacks, MSD."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.errors import GeometryError, InputError
from medseg.image import Image
from medseg.io import load_dataset, write_image
from medseg.io.writing import write_dataset


def _img(seed=0, shape=(8, 9)):
    return Image(np.random.default_rng(seed).integers(0, 255, shape).astype(np.uint8))


def _lab(seed=0, shape=(8, 9)):
    return Image((np.random.default_rng(seed + 100).random(shape) > 0.7).astype(np.uint8))


def _files(folder, names, maker):
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        write_image(maker(i), folder / n)


def test_pairing_by_identical_stem(tmp_path):
    _files(tmp_path / "images", ["a.png", "b.png"], _img)
    _files(tmp_path / "labels", ["a.png", "b.png"], _lab)
    ds = load_dataset(tmp_path)
    assert ds.layout == "folders" and ds.case_ids == ["a", "b"]
    assert [c.label.name for c in ds.cases] == ["a.png", "b.png"]


def test_pairing_by_leading_case_id_drive_style(tmp_path):
    ids = ["21", "22", "23"]
    _files(tmp_path / "img", [f"{i}_training.tif" for i in ids], _img)
    _files(tmp_path / "man", [f"{i}_manual1.gif" for i in reversed(ids)], _lab)
    _files(tmp_path / "fov", [f"{i}_training_mask.gif" for i in ids], _lab)
    ds = load_dataset(images=tmp_path / "img", labels=tmp_path / "man", roi=tmp_path / "fov")
    assert ds.case_ids == ids
    for c in ds.cases:
        assert c.label.name == f"{c.case_id}_manual1.gif" and c.roi.name == f"{c.case_id}_training_mask.gif"
    img = ds.load_image(ds.cases[0])
    assert ds.load_roi(ds.cases[0], img).array.max() == 1


def test_pairing_by_number(tmp_path):
    _files(tmp_path / "images", ["img7.png", "img12.png"], _img)
    _files(tmp_path / "labels", ["seg_007.png", "seg_012.png"], _lab)
    ds = load_dataset(tmp_path)
    assert sorted(c.label.name for c in ds.cases) == ["seg_007.png", "seg_012.png"]
    assert {c.case_id: c.label.name for c in ds.cases}["12"] == "seg_012.png"


def test_unpaired_files_are_listed(tmp_path):
    _files(tmp_path / "images", ["1_a.png", "2_a.png", "3_a.png"], _img)
    _files(tmp_path / "labels", ["1_b.png", "2_b.png", "9_b.png"], _lab)
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path)
    msg = str(e.value)
    assert "3_a.png" in msg and "9_b.png" in msg


def test_ambiguous_files_are_listed(tmp_path):
    _files(tmp_path / "images", ["1_a.png", "2_a.png"], _img)
    _files(tmp_path / "labels", ["1_x.png", "1_y.png", "2_x.png"], _lab)
    with pytest.raises(InputError) as e:
        load_dataset(tmp_path)
    assert "ambiguous" in str(e.value) and "1_x.png" in str(e.value) and "1_y.png" in str(e.value)


def test_label_image_mismatch_is_a_geometry_error(tmp_path):
    _files(tmp_path / "images", ["a.png"], _img)
    _files(tmp_path / "labels", ["a.png"], lambda i: _lab(shape=(5, 5)))
    ds = load_dataset(tmp_path)
    case = ds.cases[0]
    with pytest.raises(GeometryError, match="labels/a.png.*shape"):
        ds.load_label(case, ds.load_image(case))


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("onehot", [False, True])
def test_npy_tutorial_layout(tmp_path, channels, onehot):
    rng = np.random.default_rng(1)
    n, h, w = 4, 10, 12
    shape = (n, h, w) if channels is None else (n, h, w, channels)
    images = rng.integers(0, 255, shape).astype(np.uint8)
    labels = rng.integers(0, 3, (n, h, w)).astype(np.uint8)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", np.eye(3, dtype=np.uint8)[labels] if onehot else labels)
    ds = load_dataset(tmp_path)
    assert ds.layout == "npy" and len(ds) == n
    img = ds.load_image(ds.cases[2])
    if channels:
        assert img.has_channels and img.n_channels == channels
        np.testing.assert_array_equal(np.moveaxis(img.array, 0, -1), images[2])
    else:
        np.testing.assert_array_equal(img.array, images[2])
    lab = ds.load_label(ds.cases[2], img)
    assert lab.dtype.kind == "u"
    np.testing.assert_array_equal(lab.array, labels[2])


def test_npy_count_mismatch(tmp_path):
    np.save(tmp_path / "images.npy", np.zeros((3, 4, 4), np.float32))
    np.save(tmp_path / "labels.npy", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="2 label maps for 3 images"):
        load_dataset(tmp_path)


def test_msd_read_write_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    cases = []
    for i in range(3):
        img = Image(rng.normal(size=(2, 5, 6, 7)).astype(np.float32), (2.0, 1.0, 0.5), (1.0, 2.0, 3.0))
        lab = img.with_array(rng.integers(0, 3, (5, 6, 7)).astype(np.uint8))
        cases.append((f"case_{i:03d}", img, lab, None))
    root = write_dataset(cases, tmp_path / "Dataset001", layout="msd",
                         label_names={0: "background", 1: "edema", 2: "tumour"},
                         channel_names=["T1", "FLAIR"])
    info = json.loads((root / "dataset.json").read_text())
    assert info["labels"] == {"background": 0, "edema": 1, "tumour": 2} and info["numTraining"] == 3
    assert info["channel_names"] == {"0": "T1", "1": "FLAIR"}
    assert sorted(p.name for p in (root / "imagesTr").iterdir())[:2] == ["case_000_0000.nii.gz", "case_000_0001.nii.gz"]
    ds = load_dataset(root)
    assert ds.layout == "msd" and ds.case_ids == ["case_000", "case_001", "case_002"]
    assert ds.label_names == {0: "background", 1: "edema", 2: "tumour"} and ds.channel_names == ["T1", "FLAIR"]
    for (_cid, img, lab, _), case in zip(cases, ds.cases):
        back = ds.load_image(case)
        np.testing.assert_array_equal(back.array, img.array)
        assert back.spacing == img.spacing and back.origin == img.origin
        np.testing.assert_array_equal(ds.load_label(case, back).array, lab.array)


def test_msd_missing_channel_and_label(tmp_path):
    root = tmp_path / "msd"
    _files(root / "imagesTr", ["a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nii.gz"], lambda i: _img(i))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "A", "1": "B"}, "labels": {"background": 0}}))
    with pytest.raises(InputError, match="b lacks channel file.*_0001"):
        load_dataset(root)
    (root / "imagesTr" / "b_0000.nii.gz").unlink()
    _files(root / "labelsTr", ["zz.nii.gz"], _lab)
    with pytest.raises(InputError, match="zz"):
        load_dataset(root)


@pytest.mark.parametrize("layout", ["folders", "npy", "msd"])
def test_write_dataset_layouts_read_back(tmp_path, layout):
    cases = [(f"c{i}", _img(i), _lab(i), None) for i in range(3)]
    root = write_dataset(cases, tmp_path / layout, layout=layout)
    ds = load_dataset(root)
    assert len(ds) == 3
    for (_cid, img, lab, _), case in zip(cases, ds.cases):
        np.testing.assert_array_equal(ds.load_image(case).array, img.array)
        np.testing.assert_array_equal(ds.load_label(case).array, lab.array)


def test_write_dataset_refuses_non_empty_folder_and_is_atomic(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="exists already; add overwrite=True"):
        write_dataset([("a", _img(), _lab(), None)], tmp_path / "out")

    def broken():
        yield "a", _img(), _lab(), None
        raise InputError("boom")

    with pytest.raises(InputError, match="boom"):
        write_dataset(broken(), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_msd_test_cases_written_and_read(tmp_path):
    img = Image(np.random.default_rng(9).normal(size=(2, 4, 5, 6)).astype(np.float32), (1.0, 1.0, 1.0))
    lab = Image(np.ones((4, 5, 6), np.uint8))
    root = write_dataset([("tr_0", img, lab, None)], tmp_path / "m", layout="msd", test_cases=[("ts_0", img)])
    ds = load_dataset(root)
    assert [c.case_id for c in ds.test_cases] == ["ts_0"]
    np.testing.assert_array_equal(ds.load_image(ds.test_cases[0]).array, img.array)
    with pytest.raises(InputError, match="test cases"):
        write_dataset([("tr_0", img, lab, None)], tmp_path / "f", layout="folders", test_cases=[("ts_0", img)])
    assert not (tmp_path / "f").exists()
