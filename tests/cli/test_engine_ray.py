"""``--engine ray``: a Ray run of a folder equals the local run file for file — also after being
interrupted mid-way and restarted — and a bad case does not stop the others.

One Ray instance (2 CPUs) serves the whole module: the command joins a Ray session its process
already holds instead of starting its own (starting one takes 5-15 s)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")

from medseg.cli.main import main  # noqa: E402
from medseg.io import write_image  # noqa: E402
from medseg.io.manifest import Manifest  # noqa: E402
from medseg.testing import disc_phantom  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("in")
    for i in range(6):
        img, _ = disc_phantom((40, 40), seed=i)
        write_image(img, root / f"case_{i}.nii.gz" if i % 2 else root / f"case_{i}.tif")
    return root


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from medseg.io import load_dataset
    from medseg.methods.dl import train_unet
    from medseg.testing import make_dataset
    from medseg.train import TrainConfig

    data = make_dataset(tmp_path_factory.mktemp("d") / "data", kind="disc", n=4, shape=(40, 40))
    out = tmp_path_factory.mktemp("m") / "model"
    train_unet(load_dataset(data), out, TrainConfig(epochs=1, folds=2, fold="0", iters_per_epoch=2, batch_size=2,
                                                    channels=(4, 8, 16), progress=False, workers=1))
    return out


def _files(out):
    """Every output but the manifest (which records times), by name."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"}


def test_segment_ray_equals_local(folder, tmp_path, capsys):
    assert main(["segment", str(folder), str(tmp_path / "local"), "--method", "otsu"]) == 0
    capsys.readouterr()
    assert main(["segment", str(folder), str(tmp_path / "ray"), "--method", "otsu", "--engine", "ray",
                 "--workers", "2"]) == 0
    local, ray_out = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert len(local) == 6 and local == ray_out
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(tmp_path / "ray" / n) for n in ray_out)
    m = Manifest.read(tmp_path / "ray")
    assert m.summary() == {"pending": 0, "done": 6, "failed": 0}


def test_predict_ray_equals_local(folder, model, tmp_path):
    base = ["predict", str(model), str(folder)]
    # the default --backend auto: the actors (one torch thread each on 2 cores) run the backend this process
    # resolved, not the one their own thread count would pick, so even the float maps are equal
    opts = ["--probabilities", "--uncertainty", "--no-tta", "--compile", "off", "--device", "cpu"]
    assert main(base + [str(tmp_path / "local")] + opts) == 0
    assert main(base + [str(tmp_path / "ray")] + opts + ["--engine", "ray", "--workers", "2"]) == 0
    local = _files(tmp_path / "local")
    assert local == _files(tmp_path / "ray")
    assert {"uncertainty.csv", "case_0.tif", "case_1_prob.nii.gz"} <= set(local) and len(local) == 6 * 4 + 1


def test_an_interrupted_ray_run_resumes_and_ends_as_the_local_run(folder, tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO, logger="medseg.run")
    argv = ["segment", str(folder), "--method", "otsu"]
    assert main(argv[:2] + [str(tmp_path / "local")] + argv[2:]) == 0
    out = tmp_path / "cut"
    real_write = Manifest.write

    def write_then_interrupt(self):  # Ctrl-C once two cases are recorded done
        path = real_write(self)
        if self.summary()["done"] >= 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Manifest, "write", write_then_interrupt)
    assert main(argv[:2] + [str(out)] + argv[2:] + ["--engine", "ray", "--workers", "2"]) == 130
    monkeypatch.setattr(Manifest, "write", real_write)
    states = Manifest.read(out).summary()
    assert states["done"] == 2 and states["pending"] == 4
    kept = {n: (out / n).stat().st_mtime_ns for n, rec in Manifest.read(out).cases.items() if rec["state"] == "done"}
    capsys.readouterr()
    assert main(argv[:2] + [str(out)] + argv[2:] + ["--engine", "ray", "--workers", "2"]) == 0  # no --force needed
    assert "2 of 6 cases done already" in caplog.text
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # the done cases were not redone
    assert len(capsys.readouterr().out.split()) == 4
    assert _files(out) == _files(tmp_path / "local")
    assert Manifest.read(out).summary() == {"pending": 0, "done": 6, "failed": 0}


def test_a_bad_case_is_reported_and_the_others_finish(folder, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="medseg.run")
    bad = tmp_path / "in"
    bad.mkdir()
    for p in sorted(folder.iterdir())[:3]:
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "broken.nii.gz").write_bytes(b"not a nifti file")
    code = main(["segment", str(bad), str(tmp_path / "out"), "--method", "otsu", "--engine", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "1 of 4 input(s) could not be segmented" in err[-1] and "broken.nii.gz" in err[-1]
    cases = Manifest.read(tmp_path / "out").cases
    assert cases["broken.nii.gz"]["state"] == "failed" and cases["broken.nii.gz"]["error"]
    assert sorted(n for n, c in cases.items() if c["state"] == "done") == sorted(p.name for p in bad.iterdir()
                                                                                  if p.name != "broken.nii.gz")
    # a rerun redoes only the failed case (still failing) and keeps the others
    code = main(["segment", str(bad), str(tmp_path / "out"), "--method", "otsu", "--engine", "ray"])
    assert code == 2 and "3 of 4 cases done already" in caplog.text


def test_an_unknown_option_fails_before_any_worker_starts(folder, tmp_path, capsys):
    code = main(["segment", str(folder), str(tmp_path / "o"), "--method", "otsu", "--engine", "ray", "--bogus", "1"])
    assert code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_without_address_a_local_ray_starts_and_stops_with_the_command(folder, tmp_path):
    """In a fresh process (no Ray session held): the command starts Ray, and nothing of it stays."""
    r = subprocess.run([sys.executable, "-m", "medseg", "segment", str(folder), str(tmp_path / "o"), "--method",
                        "otsu", "--engine", "ray", "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.split()) == 6
    assert all(line.startswith("ray: ") or "case" in line for line in r.stderr.strip().splitlines()), r.stderr
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["medseg_manifest"] == 1
