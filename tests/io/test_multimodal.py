"""Multimodal cases: modality folders, MSD channels and DICOM studies on one reference grid."""
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from medseg.cli.main import main
from medseg.errors import ConfigError, InputError
from medseg.image import Image, same_grid
from medseg.io import load_dataset, read_image, write_image
from medseg.io.multimodal import (
    channel_difference,
    choose_reference,
    convert_study,
    overlap_fraction,
    read_study,
    stack_modalities,
)
from medseg.run import apply_paths, channel_groups, read_input

STUDY = ("TCIA-Brain-Tumor-Progression", "PGBM-001")


def _square(shape, spacing, origin, lo_mm, hi_mm, value=100.0):
    """An image whose voxels with centres inside the world box [lo_mm, hi_mm) are ``value``."""
    idx = np.indices(shape).astype(float)
    world = [origin[a] + spacing[a] * idx[a] for a in range(len(shape))]
    inside = np.logical_and.reduce([(w >= lo) & (w < hi) for w, lo, hi in zip(world, lo_mm, hi_mm)])
    return Image(np.where(inside, value, 0.0).astype(np.float32), spacing, origin)


def _centroid_mm(img, mask):
    idx = np.argwhere(mask).mean(axis=0)
    return np.asarray(img.origin) + np.asarray(img.spacing) * idx


def test_coarse_modality_lands_where_it_is_in_physical_space():
    t1 = _square((40, 40), (1.0, 1.0), (0.0, 0.0), (5, 5), (9, 9))  # fine grid: the reference
    # FLAIR: 2 mm voxels, shifted origin; a bright square at world y 20..30, x 10..20 mm
    flair = _square((20, 20), (2.0, 2.0), (10.0, -6.0), (20, 10), (30, 20))
    both = stack_modalities([t1, flair], ["T1", "FLAIR"])
    assert both.meta["reference"] == "T1" and both.meta["channel_names"] == ["T1", "FLAIR"]
    assert both.array.shape == (2, 40, 40) and same_grid(both, t1)
    np.testing.assert_array_equal(both.array[0], t1.array)  # the reference is untouched
    bright = both.array[1] > 50
    np.testing.assert_allclose(_centroid_mm(both, bright), [24.5, 14.5], atol=1.0)
    assert 60 <= bright.sum() <= 140  # ~10 x 10 mm at 1 mm voxels
    # voxels outside FLAIR's extent (y < 9 mm) are 0
    assert both.array[1, :8].max() == 0


def test_reference_3d_named_and_geometry_is_the_references():
    fine = _square((10, 32, 32), (3.0, 1.0, 1.0), (0.0, 0.0, 0.0), (9, 8, 8), (18, 16, 16))
    coarse = _square((6, 16, 16), (6.0, 2.0, 2.0), (-3.0, 1.0, 1.0), (9, 8, 8), (18, 16, 16))
    out = stack_modalities([coarse, fine], ["T2", "T1"], reference="T2")
    assert same_grid(out, coarse) and out.meta["reference"] == "T2"
    assert choose_reference([coarse, fine], ["T2", "T1"]) == 1  # the finest by default
    # ties go to the first
    assert choose_reference([fine, fine], ["A", "B"]) == 0
    with pytest.raises(ConfigError, match="--reference PET.*T2, T1"):
        stack_modalities([coarse, fine], ["T2", "T1"], reference="PET")
    # the object's centre is where it is in mm, on either grid
    default = stack_modalities([coarse, fine], ["T2", "T1"])
    c_fine = _centroid_mm(default, default.array[1] > 50)
    c_coarse = _centroid_mm(default, default.array[0] > 50)
    np.testing.assert_allclose(c_coarse, c_fine, atol=2.0)


def test_no_overlap_is_one_error_naming_both():
    t1 = Image(np.ones((20, 20), np.float32))
    far = Image(np.ones((20, 20), np.float32), origin=(500.0, 0.0))
    assert overlap_fraction(t1, far) == 0.0
    with pytest.raises(InputError, match=r"FLAIR does not overlap the reference modality T1"):
        stack_modalities([t1, far], ["T1", "FLAIR"])


def _modality_dataset(root, *, missing=None, label_on="T1", far=False):
    for i in range(2):
        cid = f"case{i}"
        t1 = _square((32, 32), (1.0, 1.0), (0.0, 0.0), (8 + i, 8), (20 + i, 20))
        flair = _square((16, 16), (2.0, 2.0), (500.0 if far else 0.0, 0.0), (8 + i, 8), (20 + i, 20), value=7.0)
        write_image(t1, root / "images" / "T1" / f"{cid}.nii.gz")
        if missing != cid:
            write_image(flair, root / "images" / "FLAIR" / f"{cid}.nii.gz")
        grid = t1 if label_on == "T1" else flair
        write_image(grid.with_array((grid.array > 0).astype(np.uint8)), root / "labels" / f"{cid}.nii.gz")
    return root


def test_modality_folders_load_as_channels(tmp_path):
    ds = load_dataset(_modality_dataset(tmp_path / "d"))
    assert ds.layout == "folders" and ds.channel_names == ["FLAIR", "T1"] and ds.case_ids == ["case0", "case1"]
    img = ds.load_image(ds.cases[1])
    lab = ds.load_label(ds.cases[1], img)
    assert img.array.shape == (2, 32, 32) and img.meta["channel_names"] == ["FLAIR", "T1"]
    assert img.meta["reference"] == "T1" and img.spacing == (1.0, 1.0)
    # both modalities agree on where the object is, and so does the label
    np.testing.assert_allclose(_centroid_mm(img, img.array[0] > 3.5), _centroid_mm(img, lab.array > 0), atol=1.0)
    # --reference FLAIR: everything on FLAIR's 2 mm grid
    ds2 = load_dataset(tmp_path / "d", reference="FLAIR")
    img2 = ds2.load_image(ds2.cases[0])
    lab2 = ds2.load_label(ds2.cases[0], img2)
    assert img2.spacing == (2.0, 2.0) and lab2.shape == img2.shape == (16, 16)
    with pytest.raises(ConfigError, match="--reference PD: no such modality"):
        load_dataset(tmp_path / "d", reference="PD")


def test_label_on_another_modality_is_resampled_nearest(tmp_path):
    ds = load_dataset(_modality_dataset(tmp_path / "d", label_on="FLAIR"))
    img = ds.load_image(ds.cases[0])
    lab = ds.load_label(ds.cases[0], img)
    assert same_grid(lab, img) and set(np.unique(lab.array)) == {0, 1}
    np.testing.assert_allclose(_centroid_mm(img, lab.array > 0), _centroid_mm(img, img.array[1] > 50), atol=1.0)


def test_missing_modality_names_case_and_modality(tmp_path):
    with pytest.raises(InputError, match=r"case case1 has no FLAIR image"):
        load_dataset(_modality_dataset(tmp_path / "d", missing="case1"))


def test_non_overlapping_modality_in_a_dataset(tmp_path):
    ds = load_dataset(_modality_dataset(tmp_path / "d", far=True))
    with pytest.raises(InputError, match=r"case case0: FLAIR does not overlap the reference modality T1"):
        ds.load_image(ds.cases[0])


def test_msd_channels_on_different_grids_are_resampled(tmp_path):
    root = tmp_path / "msd"
    t1 = _square((32, 32), (1.0, 1.0), (0.0, 0.0), (8, 8), (20, 20))
    pet = _square((8, 8), (4.0, 4.0), (0.0, 0.0), (8, 8), (20, 20), value=3.0)
    write_image(pet, root / "imagesTr" / "c1_0000.nii.gz")
    write_image(t1, root / "imagesTr" / "c1_0001.nii.gz")
    write_image(t1.with_array((t1.array > 0).astype(np.uint8)), root / "labelsTr" / "c1.nii.gz")
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "PET", "1": "T1"},
                                                   "labels": {"background": 0, "x": 1}, "file_ending": ".nii.gz"}))
    ds = load_dataset(root)
    img = ds.load_image(ds.cases[0])
    assert img.array.shape == (2, 32, 32) and img.meta["reference"] == "T1"
    # prediction reads an MSD multichannel case whole, from its _0000 file, with the names of dataset.json
    first = root / "imagesTr" / "c1_0000.nii.gz"
    inp = read_input(first, channels=channel_groups(root / "imagesTr")[first])
    assert inp.array.shape == (2, 32, 32) and inp.meta["channel_names"] == ["PET", "T1"]
    assert not read_input(first).has_channels  # one file alone is one channel, as before
    seen = []

    def fn(image):
        seen.append(image.meta["channel_names"])
        return image.with_array((image.array[1] > 50).astype(np.uint8))

    written = apply_paths(fn, root / "imagesTr", tmp_path / "pred", progress=False)
    assert [p.name for p in written] == ["c1.nii.gz"] and seen == [["PET", "T1"]]
    assert read_image(written[0]).spacing == (1.0, 1.0)


def test_channel_difference_messages():
    assert channel_difference(["T1", "FLAIR"], ["T1", "FLAIR"]) is None
    assert "order" in channel_difference(["T1", "FLAIR"], ["FLAIR", "T1"])
    assert channel_difference(["T1", "FLAIR"], ["T1", "T2"]).startswith("missing FLAIR; unexpected T2")
    assert channel_difference([], ["T1"]) is None


# ---------------------------------------------------------------------- real DICOM study
def test_study_to_multimodal_msd_case_lines_up_with_the_mask(real_data, tmp_path):
    study = real_data(*STUDY)
    out = tmp_path / "pgbm"
    code = main(["convert", str(study), str(out), "--layout", "msd", "--series", "T1post", "--series", "FLAIRreg",
                 "--series", "ADCreg", "--label-series", "MaskTumor"])
    assert code == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["channel_names"] == {"0": "T1post", "1": "FLAIRreg", "2": "ADCreg"}
    names = sorted(p.name for p in (out / "imagesTr").iterdir())
    assert names == ["PGBM-001_0000.nii.gz", "PGBM-001_0001.nii.gz", "PGBM-001_0002.nii.gz"]
    mask = read_image(out / "labelsTr" / "PGBM-001.nii.gz")
    for n in names:  # every channel's grid is the mask's
        assert same_grid(read_image(out / "imagesTr" / n), mask, atol=1e-3)
    ds = load_dataset(out)
    img = ds.load_image(ds.cases[0])
    lab = ds.load_label(ds.cases[0], img)
    assert img.array.shape == (3, 24, 320, 260) and img.meta["channel_names"] == ["T1post", "FLAIRreg", "ADCreg"]
    # the mask covers the enhancing tumour: brighter in T1post than the brain around it (a ring
    # 10 voxels wide in plane); the same mask shifted 40 voxels sideways is not
    t1 = img.array[0]
    tumour = lab.array > 0
    assert tumour.sum() > 1000

    def contrast(mask):
        ring = ndi.binary_dilation(mask, np.ones((1, 3, 3), bool), iterations=10) & ~mask
        return np.median(t1[mask]) / np.median(t1[ring])

    assert contrast(tumour) > 1.15
    assert contrast(np.roll(tumour, 40, axis=2)) < contrast(tumour) - 0.1
    # asking for the same series twice, or a series that is not there: one clear error
    with pytest.raises(InputError, match="pick the same series"):
        read_study(study, ["T1post", "T1post"])
    with pytest.raises(InputError, match="no single DICOM series matches 'PD'"):
        convert_study(study, tmp_path / "bad", series=["T1post", "PD"])
    assert not (tmp_path / "bad").exists()


def test_several_series_are_one_multimodal_input(real_data, tmp_path):
    study = real_data(*STUDY)
    seen = []

    def fn(image):
        seen.append((image.array.shape, list(image.meta["channel_names"])))
        return image.with_array((image.array[0] > image.array[0].mean()).astype(np.uint8))

    written = apply_paths(fn, study, tmp_path / "out.nii.gz", series=["T1post", "FLAIRreg"], progress=False)
    assert seen == [((2, 24, 320, 260), ["T1post", "FLAIRreg"])]
    t1 = read_image(study, series="T1post")
    assert same_grid(read_image(written[0]), t1, atol=1e-3)
    # one --series behaves as before: a single-channel image
    one = read_input(study, series=["T1post"])
    assert not one.has_channels and same_grid(one, t1)
