"""Property tests for the dataset loaders: random folder shapes (layout folders in the wrong
places, files where folders belong, unpairable names, garbage and empty files, random
`dataset.json`, npy pairs of random shapes and dtypes) each end in a dataset that loads, is
fingerprinted and checked as `train` checks it, or in one MedsegError, with nothing printed by a library."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medseg.cli.main import main
from medseg.errors import MedsegError
from medseg.fingerprint import fingerprint
from medseg.image import Image
from medseg.io import load_dataset, write_image

SETTINGS = settings(max_examples=int(os.environ.get("MEDSEG_FUZZ_EXAMPLES", "40")), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PARTS = ["images", "labels", "roi", "imagesTr", "labelsTr", "imagesTs", "masks", "."]
NAMES = ["case_000", "case_001", "case_000_0000", "case_001_0000", "21_training", "21_manual1", "x", "22",
         "hippocampus_003", "hippocampus_003_0000", "images", "labels"]
SUFFIXES = [".nii.gz", ".png", ".npy", ".tif", ".mha", ".txt", ".json", ""]
KINDS = ["image", "label", "garbage", "empty", "folder"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["labels", "channel_names", "modality", "training", "file_ending", "numTraining",
                         "background", "0", "1", "image", "label", "name"]), children, max_size=5),
    max_leaves=12)

entries = st.lists(st.tuples(st.sampled_from(PARTS), st.sampled_from(NAMES), st.sampled_from(SUFFIXES),
                             st.sampled_from(KINDS), st.integers(0, 2)), min_size=0, max_size=10)


def _write(path, kind, shape_pick, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir(exist_ok=True)
        return
    if kind == "empty":
        path.write_bytes(b"")
        return
    if kind == "garbage":
        path.write_bytes(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
        return
    shape = [(12, 14), (4, 12, 14), (12, 15)][shape_pick]
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    if suffix not in (".nii.gz", ".png", ".npy", ".tif", ".mha"):
        path.write_text("not an image")
        return
    if suffix == ".png" and len(shape) == 3:
        shape = shape[1:]
    if kind == "image":
        arr = (rng.random(shape) * 200).astype(np.uint8 if suffix == ".png" else np.float32)
    else:
        arr = (rng.random(shape) > 0.7).astype(np.uint8)
    write_image(Image(arr), path)


def _check(root, capfd, tmp_path):
    capfd.readouterr()
    try:
        ds = load_dataset(root)
        fp = fingerprint(ds)
        assert isinstance(fp, dict) and "problems" in fp
        fingerprint(ds, strict=True)  # what `train` runs first: a problem that stops training raises
    except MedsegError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == "", captured.err[:300]
    code = main(["inspect", str(root), "--json", str(tmp_path / "fp.json"), "--force"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code in (0, 2), (code, err)
    if code == 2:  # an error is one line; a dataset's problems are listed on stdout, not stderr
        assert len([e for e in err if e.startswith("medseg: error:")]) == 1, err
    assert not [e for e in err if not e.startswith("medseg: ")], err


@SETTINGS
@given(tree=entries, dataset_json=st.none() | json_values, seed=st.integers(0, 1000))
def test_random_folder_shapes(tree, dataset_json, seed, tmp_path_factory, capfd):
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(seed)
    for part, name, suffix, kind, shape_pick in tree:
        folder = root if part == "." else root / part
        if folder.exists() and not folder.is_dir():
            continue
        try:
            _write(folder / f"{name}{suffix}", kind, shape_pick, rng)
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            continue
    if dataset_json is not None:
        (root / "dataset.json").write_text(json.dumps(dataset_json))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    _check(root, capfd, tmp_path_factory.mktemp("out"))
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # inputs never changed
    shutil.rmtree(root, ignore_errors=True)


@SETTINGS
@given(n=st.integers(0, 4), shape=st.lists(st.integers(0, 9), min_size=0, max_size=5),
       dtype=st.sampled_from(["uint8", "int16", "float32", "float64", "bool", "int64", "complex64", "float16"]),
       label_shape=st.none() | st.lists(st.integers(0, 9), min_size=0, max_size=5),
       label_dtype=st.sampled_from(["uint8", "float32", "int64", "bool", "float64"]), nan=st.booleans())
def test_random_npy_pairs(n, shape, dtype, label_shape, label_dtype, nan, tmp_path_factory, capfd):
    root = tmp_path_factory.mktemp("npy")
    rng = np.random.default_rng(0)
    images = (rng.random((n, *shape)) * 5).astype(dtype)
    if nan and images.dtype.kind == "f" and images.size:
        images.flat[0] = np.nan
    np.save(root / "images.npy", images)
    if label_shape is not None:
        labels = (rng.random((n, *label_shape)) * 3).astype(label_dtype)
        np.save(root / "labels.npy", labels)
    _check(root, capfd, tmp_path_factory.mktemp("out"))
    shutil.rmtree(root, ignore_errors=True)


@SETTINGS
@given(layout=st.sampled_from(["folders", "msd"]), n=st.integers(1, 4), dims=st.sampled_from([2, 3]),
       damage=st.lists(st.tuples(st.sampled_from(["delete", "garbage", "empty", "rename", "stray", "nan", "float",
                                                  "shape", "json"]), st.integers(0, 50)), max_size=3),
       seed=st.integers(0, 1000))
def test_valid_layouts_randomly_damaged(layout, n, dims, damage, seed, tmp_path_factory, capfd):
    """Mostly-valid datasets with a few random faults: loaded with the fault listed as a problem,
    or refused in one line."""
    root = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(seed)
    shape = (10, 12) if dims == 2 else (3, 10, 12)
    img_dir, lab_dir = ("images", "labels") if layout == "folders" else ("imagesTr", "labelsTr")
    for i in range(n):
        stem = f"case_{i:03d}"
        write_image(Image(rng.random(shape).astype(np.float32)),
                    root / img_dir / (f"{stem}.nii.gz" if layout == "folders" else f"{stem}_0000.nii.gz"))
        write_image(Image((rng.random(shape) > 0.6).astype(np.uint8)), root / lab_dir / f"{stem}.nii.gz")
    if layout == "msd":
        (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MR"}, "labels": {
            "background": 0, "thing": 1}, "numTraining": n, "file_ending": ".nii.gz"}))
    files = sorted(p for p in root.rglob("*.nii.gz"))
    for what, k in damage:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        if not files:
            break
        f = files[k % len(files)]
        if what == "delete":
            f.unlink()
        elif what == "garbage":
            f.write_bytes(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
        elif what == "empty":
            f.write_bytes(b"")
        elif what == "rename":
            f.rename(f.with_name("zz_" + f.name))
        elif what == "stray":
            (f.parent / "notes.txt").write_text("hello")
        elif what in ("nan", "float", "shape") and f.name.endswith(".nii.gz"):
            arr = rng.random(shape).astype(np.float32)
            if what == "nan":
                arr[0, 0] = np.nan
            elif what == "float":
                arr = arr * 0.5
            else:
                arr = rng.random((7, 9)).astype(np.float32)
            write_image(Image(arr), f)
        elif what == "json" and layout == "msd":
            (root / "dataset.json").write_text(json.dumps([1, 2, 3]) if k % 2 else "{not json")
    _check(root, capfd, tmp_path_factory.mktemp("out"))
    shutil.rmtree(root, ignore_errors=True)
