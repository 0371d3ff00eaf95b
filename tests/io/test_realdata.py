"""Real public data in ../shared/data (skipped cleanly when absent)."""
from __future__ import annotations

import numpy as np
import pytest

from medseg.errors import InputError
from medseg.image import same_grid
from medseg.io import load_dataset, read_image, read_label
from medseg.io.dicom import list_series
from medseg.io.sitk import image_from_sitk

pytestmark = pytest.mark.realdata


def _study(real_data):
    root = real_data("TCIA-Brain-Tumor-Progression", "PGBM-001")
    studies = [p for p in root.iterdir() if p.is_dir()]
    assert len(studies) == 1
    return studies[0]


def test_tcia_each_series_matches_simpleitk(real_data):
    import SimpleITK as sitk

    study = _study(real_data)
    series_dirs = sorted(p for p in study.iterdir() if p.is_dir())
    assert len(series_dirs) == 6
    for d in series_dirs:
        img = read_image(d)
        assert img.shape[0] == 24 and img.ndim == 3, d.name
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(d)))
        ref = image_from_sitk(reader.Execute())
        assert img.shape == ref.shape
        np.testing.assert_allclose(img.spacing, ref.spacing, rtol=1e-6)
        np.testing.assert_allclose(img.origin, ref.origin, atol=1e-4)
        np.testing.assert_allclose(img.direction, ref.direction, atol=1e-6)
        np.testing.assert_allclose(img.array, ref.array, rtol=1e-6, atol=1e-3)
        assert img.meta["modality"] == "MR" and img.meta["series_description"]
        assert not any("PGBM" in str(v) for v in img.meta.values() if v != img.meta.get("source"))


def test_tcia_study_folder_lists_series_and_selects(real_data):
    study = _study(real_data)
    found = list_series(study)
    assert len(found) == 6 and all(s.n_files == 24 for s in found)
    with pytest.raises(InputError, match="holds 6 DICOM series"):
        read_image(study)
    t1 = read_image(study, series="T1post")
    mask = read_label(study, series=next(s.uid for s in found if s.description == "Mask_Tumor"))
    assert same_grid(t1, mask)  # MaskTumor lies on T1post's grid
    assert set(np.unique(mask.array)) == {0, 1} and mask.dtype == np.uint8
    assert 0 < mask.array.mean() < 0.05


def test_pyradiomics_nrrd_pairs(real_data):
    import SimpleITK as sitk

    root = real_data("pyradiomics")
    expect = {"brain1": (25, 256, 256), "brain2": (23, 256, 256), "breast1": (21, 120, 45)}
    for name, shape in expect.items():
        img = read_image(root / f"{name}_image.nrrd")
        lab = read_label(root / f"{name}_label.nrrd")
        assert img.shape == shape and same_grid(img, lab)
        ref = sitk.ReadImage(str(root / f"{name}_image.nrrd"))
        assert img.spacing == pytest.approx(tuple(reversed(ref.GetSpacing())))
        assert set(np.unique(lab.array)) <= {0, 1} and lab.array.any()
    assert read_image(root / "brain1_image.nrrd").spacing == pytest.approx((6.5, 0.78125, 0.78125), rel=1e-3)


def test_hippocampus_msd_layout(real_data):
    ds = load_dataset(real_data("Hippocampus"))
    assert ds.layout == "msd" and len(ds) == 200
    assert ds.label_names == {0: "background", 1: "anterior", 2: "posterior"}
    img = ds.load_image(ds.cases[0])
    lab = ds.load_label(ds.cases[0], img)
    assert img.ndim == 3 and set(np.unique(lab.array)) == {0, 1, 2}
