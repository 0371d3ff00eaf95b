"""Recipes: registry, each recipe on a fitting phantom, parameter overrides, CLI, bad input,
what each recipe expects of its input, and brain-mask on real T1 volumes (slow)."""
import logging
import subprocess
import sys

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.recipes import RECIPES, Recipe, check_expectations, get_recipe
from medseg.testing import disc_phantom, fundus_phantom, t1_head_phantom


def dice(a, b):
    a, b = np.asarray(a) > 0, np.asarray(b) > 0
    return 2 * np.sum(a & b) / max(a.sum() + b.sum(), 1)


def ct_phantom(shape=(20, 64, 64), seed=0):
    """Chest-like CT in HU: air, body (40), two lungs (-850) with vessels, bone ring (700)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    cy, cx = shape[1] / 2, shape[2] / 2
    body = ((y - cy) / 26) ** 2 + ((x - cx) / 29) ** 2 <= 1
    bone = body & (((y - cy) / 24) ** 2 + ((x - cx) / 27) ** 2 > 0.85)
    lungs = np.zeros(shape, bool)
    for side in (-1, 1):
        lungs |= ((y - cy) / 14) ** 2 + ((x - cx - side * 12) / 8) ** 2 <= 1
    vessels = lungs & (rng.random(shape) < 0.01)
    hu = np.full(shape, -1000.0, np.float32)
    hu[body] = 40
    hu[bone] = 700
    hu[lungs] = -850
    hu[vessels] = 40
    hu += rng.normal(0, 20, shape).astype(np.float32)
    return Image(hu, (2.5, 1.0, 1.0), meta={"modality": "CT"}), lungs, bone


def test_builtin_recipes_are_registered_and_describe_themselves():
    assert {"retina-vessels", "lung-ct", "bone-ct", "brain-mask"} <= set(RECIPES.names())
    for name in RECIPES.names():
        d = RECIPES.get(name).describe()
        assert d["name"] == name and d["dims"] and d["summary"] and d["method"]


def test_retina_vessels_on_fundus_phantom():
    img, vessels, fov = fundus_phantom((256, 256), seed=4)
    out = get_recipe("retina-vessels")(img)
    assert out.shape == img.shape and out.array.dtype == np.uint8
    f = fov.array > 0
    assert dice(out.array[f], vessels.array[f]) > 0.75
    assert out.array[~f].mean() < 0.002  # the recipe finds the field of view itself


def test_lung_and_bone_ct():
    ct, lungs, bone = ct_phantom()
    lung_mask = get_recipe("lung-ct")(ct).array
    assert dice(lung_mask, lungs) > 0.95
    bone_mask = get_recipe("bone-ct")(ct).array
    assert dice(bone_mask, bone) > 0.8  # marrow filling adds the enclosed body: check the ring
    assert bone_mask[bone].mean() > 0.98
    sl = Image(ct.array[10], ct.spacing[1:])
    assert dice(get_recipe("lung-ct")(sl).array, lungs[10]) > 0.95


@pytest.mark.parametrize("seed", [0, 3])
def test_brain_mask_excludes_scalp_on_thick_slice_t1_phantom(seed):
    """Bright scalp fat around a dark skull around the brain, 6.5 mm slices: scalp and skull out,
    brain and its enhancing lesion in."""
    img, truth = t1_head_phantom(seed=seed)
    t = truth.array
    mask = get_recipe("brain-mask")(img).array.astype(bool)
    assert mask[t == 1].mean() < 0.001, "scalp in the brain mask"
    assert mask[t == 2].mean() < 0.005, "skull in the brain mask"
    assert mask[t == 4].mean() > 0.95 and mask[t == 5].mean() > 0.95
    assert mask[t == 0].sum() == 0


def test_the_t1_phantom_catches_a_mask_that_keeps_the_scalp():
    """Control: the scalp test above fails for Otsu + largest component (the head, not the brain)."""
    from skimage.filters import threshold_otsu
    from skimage.measure import label

    img, truth = t1_head_phantom(seed=0)
    a = img.array
    lbl = label(a > threshold_otsu(a))
    head = lbl == np.bincount(lbl.ravel())[1:].argmax() + 1
    assert head[truth.array == 1].mean() > 0.5


def test_skull_strip_follows_the_slice_axis_and_its_parameters():
    """The thick axis need not be the first; user bounds and depth floor are honoured and reported."""
    from medseg.classical import SkullStrip

    img, truth = t1_head_phantom(seed=1)
    ref = SkullStrip()(img)
    moved = Image(np.moveaxis(img.array, 0, 2), (1.2, 1.2, 6.5))
    out = SkullStrip()(moved)
    assert out.meta["slice_axis"] == 2
    assert np.array_equal(np.moveaxis(out.array, 2, 0), ref.array)
    assert ref.meta["low"] < ref.meta["brain_mode"] < ref.meta["high"] and ref.meta["min_depth"] > 6
    tight = SkullStrip(min_depth=40.0)(img)
    assert tight.meta["min_depth"] == 40.0 and tight.array.sum() < 0.8 * ref.array.sum()
    with pytest.raises(ConfigError, match="--low"):
        SkullStrip(low=900.0, high=800.0)
    with pytest.raises(ConfigError, match="--bridge"):
        SkullStrip(bridge=0)


def test_skull_strip_on_no_head_warns_and_returns_empty(caplog):
    from medseg.classical import SkullStrip

    with caplog.at_level(logging.WARNING, logger="medseg"):
        out = SkullStrip()(Image(np.full((6, 20, 20), 5.0, np.float32), (6.5, 1.0, 1.0)))
    assert out.array.sum() == 0 and "constant" in caplog.text


def test_overrides_and_errors():
    img, _ = disc_phantom((32, 32))
    r = get_recipe("lung-ct", ["--min-size", "50"])
    assert r.method.params.min_size == 50 and r.method.params.clear_border
    with pytest.raises(ConfigError, match="did you mean 'min-size'"):
        get_recipe("lung-ct", ["--min-sise", "5"])
    with pytest.raises(ConfigError, match="did you mean 'lung-ct'"):
        get_recipe("lung_ct")
    with pytest.raises(InputError, match="3D"):
        get_recipe("brain-mask")(img)
    with pytest.raises(ConfigError, match="unknown key"):
        Recipe.from_dict({"name": "x", "method": "otsu", "paramz": {}})


def test_recipe_from_json_file(tmp_path):
    import json

    f = tmp_path / "mine.json"
    f.write_text(json.dumps({"name": "mine", "method": "otsu",
                             "preprocess": [{"step": "gaussian", "params": {"sigma": 1}}],
                             "params": {"min_size": 5}, "post": [{"fill_holes": True}]}))
    img, truth = disc_phantom((48, 48))
    out = get_recipe(str(f))(img)
    assert dice(out.array, truth.array) > 0.95 and out.meta["recipe"] == "mine"


def test_cli_segment_recipe_method_and_listing(tmp_path, capsys):
    img, _, _ = fundus_phantom((128, 128), seed=0)
    write_image(img, tmp_path / "f.png")
    assert main(["segment", str(tmp_path / "f.png"), str(tmp_path / "v.png"), "--recipe", "retina-vessels"]) == 0
    v = read_image(tmp_path / "v.png")
    assert v.shape == (128, 128) and set(np.unique(v.array)) <= {0, 1}
    d, truth = disc_phantom((48, 48))
    write_image(d, tmp_path / "d.nii.gz")
    assert main(["segment", str(tmp_path / "d.nii.gz"), str(tmp_path / "o.nii.gz"), "--method", "otsu",
                 "--min-size", "10"]) == 0
    assert dice(read_image(tmp_path / "o.nii.gz").array, truth.array) > 0.95
    assert main(["segment", str(tmp_path / "d.nii.gz"), str(tmp_path / "r.nii.gz"), "--method",
                 "region-growing", "--seeds", "100,3"]) == 2
    assert "outside the image" in capsys.readouterr().err
    assert not (tmp_path / "r.nii.gz").exists()
    assert main(["segment", str(tmp_path / "d.nii.gz"), str(tmp_path / "r.nii.gz"), "--recipe", "brain-mask"]) == 2
    capsys.readouterr()
    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    for name in ("retina-vessels", "lung-ct", "bone-ct", "brain-mask", "vesselness", "random-walker"):
        assert name in listing


@pytest.mark.realdata
def test_retina_vessels_on_one_real_drive_image(real_data):
    from medseg.io import read_label

    root = real_data("DRIVE", "training")
    img = read_image(root / "images" / "21_training.tif")
    truth = read_label(root / "1st_manual" / "21_manual1.gif").array
    fov = read_label(root / "mask" / "21_training_mask.gif").array > 0
    out = get_recipe("retina-vessels")(img).array
    assert dice(out[fov], truth[fov]) > 0.7


@pytest.mark.parametrize("recipe", ["lung-ct", "bone-ct"])
def test_ct_recipes_refuse_what_is_not_hounsfield(recipe, tmp_path, capsys):
    """An MR (or a normalised image) given to a CT recipe is one clear line, not a silent mask."""
    from medseg.recipes import check_expectations

    mr = Image(np.random.default_rng(0).random((8, 32, 32)).astype(np.float32) * 3000)
    write_image(mr, tmp_path / "mr.nii.gz")
    assert main(["segment", str(tmp_path / "mr.nii.gz"), str(tmp_path / "o.nii.gz"), "--recipe", recipe]) == 2
    assert "Hounsfield" in capsys.readouterr().err and not (tmp_path / "o.nii.gz").exists()
    tagged = Image(np.full((8, 32, 32), -1000.0, np.float32), meta={"modality": "MR"})
    with pytest.raises(InputError, match="modality is MR"):
        check_expectations(RECIPES.get(recipe), tagged)


# --------------------------------------------------------------------- what recipes expect
def _mr_volume(**meta):
    img, _ = t1_head_phantom(seed=2)
    return Image(img.array, img.spacing, meta=meta)


def test_every_recipe_states_modality_and_channels():
    want = {"lung-ct": "CT", "bone-ct": "CT", "brain-mask": "MR", "retina-vessels": "photo"}
    for name, modality in want.items():
        exp = RECIPES.get(name).expects
        assert exp["modality"] == modality and exp["channels"]
    assert RECIPES.get("brain-mask").dims == (3,) and RECIPES.get("retina-vessels").dims == (2,)


def test_brain_mask_refuses_ct_rgb_and_2d(tmp_path, capsys):
    ct, _, _ = ct_phantom()
    with pytest.raises(InputError, match=r"expects an MR image; this image's modality is CT \(from its metadata"):
        get_recipe("brain-mask")(ct)
    untagged = Image(ct.array, ct.spacing)  # NIfTI-like: no modality, but air at -1000 HU
    with pytest.raises(InputError, match=r"this image is a CT \(from its values"):
        get_recipe("brain-mask")(untagged)
    write_image(untagged, tmp_path / "ct.nii.gz")
    assert main(["segment", str(tmp_path / "ct.nii.gz"), str(tmp_path / "o.nii.gz"), "--recipe", "brain-mask"]) == 2
    assert "expects an MR image" in capsys.readouterr().err and not (tmp_path / "o.nii.gz").exists()
    two = Image(np.stack([ct.array, ct.array]), ct.spacing, meta={"modality": "MR"})
    with pytest.raises(InputError, match="expects single-channel images; this image has 2 channels"):
        get_recipe("brain-mask")(two)
    with pytest.raises(InputError, match="for 3D images; this image is 2D"):
        get_recipe("brain-mask")(Image(np.ones((32, 32)), meta={"modality": "MR"}))


def test_unknown_modality_is_a_warning_not_a_refusal(tmp_path, caplog):
    img = _mr_volume()  # no modality, no evidence either way
    with caplog.at_level(logging.WARNING, logger="medseg"):
        mask = get_recipe("brain-mask")(img)
    assert mask.array.any() and "does not say its modality" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="medseg"):
        check_expectations(RECIPES.get("brain-mask"), _mr_volume(modality="MR"))
    assert not caplog.records  # a tagged MR says nothing
    write_image(img, tmp_path / "mr.nii.gz")  # NIfTI: no modality; a fresh process shows the CLI's logging
    r = subprocess.run([sys.executable, "-m", "medseg", "segment", str(tmp_path / "mr.nii.gz"),
                        str(tmp_path / "o.nii.gz"), "--recipe", "brain-mask"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "medseg: warning: recipe 'brain-mask' expects an MR image" in r.stderr and (tmp_path / "o.nii.gz").exists()


def test_other_mr_weighting_and_body_part_are_warnings(caplog):
    r = RECIPES.get("brain-mask")
    with caplog.at_level(logging.WARNING, logger="medseg"):
        check_expectations(r, _mr_volume(modality="MR", series_description="T2reg"))
        check_expectations(r, _mr_volume(modality="MR", series_description="T1post", body_part="CHEST"))
    assert "T1-weighted MR; this image is described as 'T2reg'" in caplog.text
    assert "made for the head; this image's body part is CHEST" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="medseg"):
        check_expectations(r, _mr_volume(modality="MR", series_description="T1pre_reg", body_part="BRAIN"))
    assert not caplog.records


def test_ct_recipes_refuse_photos_and_pass_a_ct_without_metadata(caplog):
    img, _, _ = fundus_phantom((64, 64), seed=0)
    with pytest.raises(InputError, match="expects single-channel images; this image has 3 channels"):
        get_recipe("lung-ct")(img)
    ct, _, _ = ct_phantom()
    with caplog.at_level(logging.WARNING, logger="medseg"):
        check_expectations(RECIPES.get("lung-ct"), Image(ct.array, ct.spacing))  # HU values are evidence enough
    assert not caplog.records


def test_retina_vessels_takes_grey_photos_and_refuses_scanners(tmp_path, caplog):
    img, vessels, fov = fundus_phantom((128, 128), seed=4)
    green = Image(img.array[1], img.spacing, meta={"format": "PNG"})
    out = get_recipe("retina-vessels")(green)  # one channel: the channel step is skipped
    f = fov.array > 0
    assert dice(out.array[f], vessels.array[f]) > 0.7
    with pytest.raises(InputError, match="expects a photograph .*modality is MR"):
        get_recipe("retina-vessels")(Image(img.array[1], meta={"modality": "MR"}))
    with pytest.raises(InputError, match="this image is a CT"):
        get_recipe("retina-vessels")(Image(np.full((64, 64), -1000.0)))
    with caplog.at_level(logging.WARNING, logger="medseg"):
        get_recipe("retina-vessels")(Image(img.array[1], img.spacing, meta={"format": "NumPy"}))
    assert "does not say its modality" in caplog.text


def test_expectations_are_validated_when_a_recipe_is_read():
    with pytest.raises(ConfigError, match="did you mean 'modality'"):
        Recipe.from_dict({"name": "x", "method": "otsu", "expects": {"modalty": "MR"}})
    with pytest.raises(ConfigError, match="one of CT, MR, photo"):
        Recipe.from_dict({"name": "x", "method": "otsu", "expects": {"modality": "PET"}})
    with pytest.raises(ConfigError, match="channel counts"):
        Recipe.from_dict({"name": "x", "method": "otsu", "expects": {"channels": 3}})
    r = Recipe.from_dict({"name": "x", "method": "otsu", "expects": {"modality": "MR", "channels": [1]}})
    assert Recipe.from_dict(r.to_dict()).expects == {"modality": "MR", "channels": [1]}


# --------------------------------------------------------------------- brain-mask on real T1
_TCIA = "TCIA-Brain-Tumor-Progression/PGBM-001/04-02-1992-FH-HEADBrain Protocols-79896"


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("image,label", [
    ("pyradiomics/brain1_image.nrrd", "pyradiomics/brain1_label.nrrd"),
    ("pyradiomics/brain2_image.nrrd", "pyradiomics/brain2_label.nrrd"),
    (f"{_TCIA}/11-T1post-80644", f"{_TCIA}/5388-MaskTumor-63335"),
    (f"{_TCIA}/34907-T1prereg-43695", f"{_TCIA}/5388-MaskTumor-63335"),
])
def test_brain_mask_on_real_t1_keeps_the_tumour_and_leaves_the_scalp(real_data, image, label):
    """No brain ground truth exists: the tumour must lie inside, nothing within 5 mm of the skin
    (scalp, fat, bone), and the volume must be an adult brain's (whole brain covered). The previous
    multi-Otsu recipe fails all four (it kept the scalp: leak 0.10-0.23, tumour coverage 0-0.01);
    the synthetic phantom above does not reproduce that failure, these volumes do."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    img = read_image(real_data(*image.split("/")))
    tumour = read_image(real_data(*label.split("/"))).array > 0
    mask = get_recipe("brain-mask")(img).array > 0
    a = img.array.astype(float)
    head = np.stack([ndi.binary_fill_holes(s) for s in a > np.expm1(threshold_otsu(np.log1p(a)))])
    depth = np.stack([ndi.distance_transform_edt(s, sampling=img.spacing[1:]) for s in head])
    assert np.count_nonzero(mask & (depth < 5)) / mask.sum() < 0.001
    assert 1100 < mask.sum() * np.prod(img.spacing) / 1000 < 2100  # ml
    # brain2's label also covers the dura next to the tumour, outside the brain
    assert mask[tumour].mean() > (0.75 if "brain2" in image else 0.95)


def test_a_recipe_that_finds_nothing_says_so(caplog):
    """lung-ct on a CT crop where both lungs touch the border returns an empty map: never silently."""
    import logging

    import numpy as np

    from medseg.image import Image
    from medseg.recipes import get_recipe

    ct = Image(np.full((4, 32, 32), 40.0, np.float32), meta={"modality": "CT"})
    ct.array[:, :, :] = 40.0
    ct.array[0, 0, 0] = -1000.0  # air, so the values read as Hounsfield units
    with caplog.at_level(logging.WARNING):
        out = get_recipe("lung-ct")(ct)
    assert not out.array.any()
    assert any("found nothing" in r.getMessage() for r in caplog.records)
