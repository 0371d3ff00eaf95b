"""Recipes: registry, each recipe on a fitting phantom, parameter overrides, CLI, bad input."""
import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import ConfigError, InputError
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.recipes import RECIPES, Recipe, get_recipe
from medseg.testing import disc_phantom, fundus_phantom, head_phantom


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


def test_brain_mask_on_head_phantom():
    img, truth = head_phantom((40, 56, 56), seed=1)
    mask = get_recipe("brain-mask")(img).array
    assert dice(mask, truth.array > 0) > 0.8
    assert mask[truth.array == 0].mean() < 0.02


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
