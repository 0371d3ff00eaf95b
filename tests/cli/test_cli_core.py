import json
import subprocess
import sys

import numpy as np
import pytest

from medseg import __version__
from medseg.cli.main import main
from medseg.image import Image
from medseg.io import read_image, write_image
from medseg.testing import disc_phantom


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "medseg", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


def test_methods_lists_threshold(capsys):
    code, out, _ = run(["methods"], capsys)
    assert code == 0 and "threshold" in out
    code, out, _ = run(["methods", "--json"], capsys)
    names = [m["name"] for m in json.loads(out)["methods"]]
    assert "threshold" in names


def test_methods_shows_training_options(capsys):
    code, out, _ = run(["methods", "unet"], capsys)
    assert code == 0 and "training options (medseg train DATASET --method unet" in out
    assert "--time-budget" in out and "--compile" in out and "--tta" in out
    code, out, _ = run(["methods", "random-forest", "--json"], capsys)
    (rf,) = json.loads(out)["methods"]
    assert "samples_per_image" in [p["name"] for p in rf["train_params"]]
    code, out, _ = run(["methods", "otsu", "--json"], capsys)
    assert "train_params" not in json.loads(out)["methods"][0]


def test_segment_threshold_keeps_geometry(tmp_path, capsys):
    img, truth = disc_phantom((40, 50, 60), seed=2, spacing=(2.0, 0.5, 0.7))
    img = Image(img.array, img.spacing, (1.0, 2.0, 3.0), np.diag([1.0, -1.0, 1.0]))
    src = tmp_path / "in.nii.gz"
    write_image(img, src)
    before = src.read_bytes()
    code, out, err = run(["segment", str(src), str(tmp_path / "out.nii.gz"), "--method", "threshold",
                          "--value", "0.5"], capsys)
    assert code == 0, err
    lab = read_image(tmp_path / "out.nii.gz")
    assert lab.shape == img.shape and lab.spacing == pytest.approx(img.spacing)
    assert lab.origin == pytest.approx(img.origin) and np.allclose(lab.direction, img.direction)
    assert lab.array.dtype == np.uint8
    dice = 2 * np.sum((lab.array > 0) & (truth.array > 0)) / (np.sum(lab.array > 0) + np.sum(truth.array > 0))
    assert dice > 0.85
    assert src.read_bytes() == before  # input untouched


def test_segment_folder(tmp_path, capsys):
    for i in range(3):
        img, _ = disc_phantom((32, 32), seed=i)
        write_image(img.with_array((img.array * 100).clip(0, 255).astype(np.uint8)), tmp_path / "in" / f"c{i}.png")
    code, out, err = run(["segment", str(tmp_path / "in"), str(tmp_path / "out"), "--method", "threshold"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.png", "c1.png", "c2.png", "manifest.json"]


@pytest.mark.parametrize("argv, needle", [
    (["segment", "missing.nii.gz", "out.nii.gz"], "no such file"),
    (["segment", "x.png", "y.png", "--method", "thresold"], "did you mean 'threshold'"),
    (["segment", "x.png", "y.png", "--method", "threshold", "--vaule", "1"], "did you mean 'value'"),
    (["train", "nowhere", "--method", "threshold", "--out", "m"], "not trainable"),
    (["predict", "no_model", "a.png", "b.png"], "no such model folder"),
    (["bogus"], "unknown command"),
])
def test_user_errors_are_one_line_exit_2(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(argv, capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_nan_image_is_refused(tmp_path, capsys):
    a = np.ones((8, 8), np.float32)
    a[2, 2] = np.nan
    write_image(Image(a), tmp_path / "nan.tif")
    code, _, err = run(["segment", str(tmp_path / "nan.tif"), str(tmp_path / "o.tif")], capsys)
    assert code == 2 and "NaN" in err
    assert not (tmp_path / "o.tif").exists()


def test_corrupt_file_is_refused(tmp_path, capsys):
    (tmp_path / "bad.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    code, _, err = run(["segment", str(tmp_path / "bad.nii.gz"), str(tmp_path / "o.nii.gz")], capsys)
    assert code == 2 and "bad.nii.gz" in err and "Traceback" not in err
    assert not (tmp_path / "o.nii.gz").exists()


def test_bad_files_in_a_folder_are_named_and_the_others_segmented(tmp_path, capsys):
    for i in range(3):
        img, _ = disc_phantom((32, 32), seed=i)
        write_image(img.with_array((img.array * 100).clip(0, 255).astype(np.uint8)), tmp_path / "in" / f"c{i}.png")
    (tmp_path / "in" / "c1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    a = np.ones((32, 32), np.float32)
    a[3, 3] = np.nan
    np.save(tmp_path / "in" / "c3.npy", a)
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    code, _, err = run(["segment", str(tmp_path / "in"), str(tmp_path / "out"), "--method", "threshold"], capsys)
    assert code == 2 and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.startswith("medseg:")]) == 1  # (the rest: progress bar)
    assert "2 of 4 input(s) could not be segmented" in err and "c1.png" in err and "c3.npy" in err and "NaN" in err
    # complete files only (and the run's manifest)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["c0.png", "c2.png", "manifest.json"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


def test_internal_error_exit_1(monkeypatch, capsys):
    import medseg.cli.cmd_methods as cm

    def boom(args, extra):
        raise RuntimeError("kaput")

    monkeypatch.setattr(cm, "run", boom)
    code, _, err = run(["methods"], capsys)
    assert code == 1 and "internal error" in err and "kaput" in err and "Traceback" not in err


def test_invalid_estimator_parameter_fails_before_training(tmp_path, capsys):
    from medseg.testing import make_dataset

    data = make_dataset(tmp_path / "d", kind="disc", n=2)
    code, _, err = run(["train", str(data), "--method", "random-forest", "--out", str(tmp_path / "m"),
                        "--n-estimators", "-3"], capsys)
    assert code == 2 and "n_estimators" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_segment_series_option(real_data, tmp_path, capsys):
    study = real_data("TCIA-Brain-Tumor-Progression", "PGBM-001")
    code, _, err = run(["segment", str(study), str(tmp_path / "o"), "--method", "otsu"], capsys)
    assert code == 2 and "--series" in err
    code, out, err = run(["segment", str(study), str(tmp_path / "o"), "--method", "otsu", "--series", "T1post"], capsys)
    assert code == 0, err
    lab = read_image(out.strip().splitlines()[-1])
    assert lab.shape[0] == 24


def test_warnings_are_marked_on_the_command_line(tmp_path):
    """Progress lines stay plain; a warning says it is one (a fresh process: no test logging)."""
    write_image(Image(np.full((16, 16), 7.0, np.float32)), tmp_path / "flat.tif")
    r = subprocess.run([sys.executable, "-m", "medseg", "segment", str(tmp_path / "flat.tif"), str(tmp_path / "o.tif"),
                        "--method", "otsu"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "medseg: warning: otsu: the image is constant; nothing to segment" in r.stderr
