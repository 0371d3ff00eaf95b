"""``medseg explain`` and ``medseg evaluate --explain``."""
import csv
import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.methods.base import load_model
from medseg.ml import RandomForest
from medseg.testing import disc_phantom


@pytest.fixture
def nifti_case(tmp_path):
    img, truth = disc_phantom((56, 52), n_objects=1, seed=5, noise=0.05)
    geo = Image(img.array.astype(np.float32), spacing=(0.8, 1.2), origin=(5.0, -3.0))
    return write_image(geo, tmp_path / "case.nii.gz")


def test_explain_unet_writes_maps_in_the_input_format_and_geometry(unet_model, nifti_case, tmp_path, capsys):
    model, _ = unet_model
    out = tmp_path / "ex"
    assert main(["explain", str(model), str(nifti_case), str(out), "--label", "1", "--device", "cpu"]) == 0
    sal = read_image(out / "saliency.nii.gz")
    src = read_image(nifti_case)
    assert sal.shape == src.shape and sal.array.dtype == np.float32
    np.testing.assert_allclose(sal.spacing, src.spacing) and np.testing.assert_allclose(sal.origin, src.origin)
    assert 0 <= sal.array.min() and sal.array.max() == pytest.approx(1.0)
    doc = json.loads((out / "explanation.json").read_text())
    assert doc["method"] == "gradcam" and doc["label"] == 1 and doc["kind"] == "network"
    assert (out / "overlay.png").read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    # an existing output is refused without --force, replaced with it
    assert main(["explain", str(model), str(nifti_case), str(out), "--method", "occlusion"]) == 2
    assert "--force" in capsys.readouterr().err
    assert json.loads((out / "explanation.json").read_text())["method"] == "gradcam"
    assert main(["explain", str(model), str(nifti_case), str(out), "--method", "occlusion", "--force"]) == 0
    assert json.loads((out / "explanation.json").read_text())["method"] == "occlusion"


@pytest.mark.parametrize("args, message", [
    (["--label", "3"], "label 3 is not a class of this model; its classes: 1"),
    (["--method", "lime"], "unknown --method 'lime'; choose gradcam, occlusion, integrated-gradients"),
    (["--layer", "nope"], "unknown Grad-CAM layer 'nope'"),
])
def test_explain_bad_options_are_one_line_errors(unet_model, nifti_case, tmp_path, capsys, args, message):
    model, _ = unet_model
    assert main(["explain", str(model), str(nifti_case), str(tmp_path / "o")] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o").exists()


def test_explain_missing_model_is_an_error(nifti_case, tmp_path, capsys):
    assert main(["explain", str(tmp_path / "nope"), str(nifti_case), str(tmp_path / "o")]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_explain_forest_writes_family_maps_and_importance(tmp_path, capsys):
    img, truth = disc_phantom((40, 40), seed=0)
    png = (img.array.clip(0, 1) * 255).astype(np.uint8)
    src = write_image(Image(png), tmp_path / "img.png")
    lab = write_image(Image(truth.array.astype(np.uint8)), tmp_path / "lab.png")
    RandomForest(n_estimators=6, autocontext=0, n_jobs=1, sigmas=(1.0,),
                 features=("intensity", "gaussian", "gradient")).fit(Image(png), truth).save(tmp_path / "rf")
    out = tmp_path / "ex"
    assert main(["explain", str(tmp_path / "rf"), str(src), str(out), "--method", "gradcam"]) == 2
    assert "--method gradcam applies to networks" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "rf"), str(src), str(out), "--labels", str(lab)]) == 0
    for fam in ("intensity", "gaussian", "gradient"):
        m = read_image(out / f"contributions_{fam}.tif")
        assert m.shape == (40, 40) and m.array.dtype == np.float32
    assert read_image(out / "saliency.tif").shape == (40, 40)
    rows = list(csv.DictReader((out / "importance.csv").open()))
    assert {r["family"] for r in rows} == {"intensity", "gaussian", "gradient"}
    assert list(rows[0]) == ["family", "importance", "std", "n_features", "score"]
    doc = json.loads((out / "explanation.json").read_text())
    assert doc["details"]["reference"] == "labels" and doc["kind"] == "pixel-classifier"


def test_evaluate_explain_puts_figures_beside_the_worst_cases(unet_model, tmp_path, capsys):
    model, data = unet_model
    preds = tmp_path / "preds"
    seg = load_model(model, {"device": "cpu", "compile": "off"})
    for f in sorted((data / "images").iterdir()):
        write_image(seg(read_image(f)), preds / f.name)
    base = ["evaluate", str(preds), str(data), "--no-distances", "--out"]
    assert main(base + [str(tmp_path / "plain")]) == 0
    assert main(base + [str(tmp_path / "ev"), "--explain", str(model)]) == 0
    plain = (tmp_path / "plain" / "report.html").read_text()
    html = (tmp_path / "ev" / "report.html").read_text()
    n_cases = len(list((data / "images").iterdir()))
    assert html.count('class="explain"') == min(5, n_cases) and 'class="explain"' not in plain
    assert html.count("alt=\"explanation of case_") == min(5, n_cases)
    assert "Grad-CAM" in html and "explained model" in html
