"""Folder runs keep OUT/manifest.json: a killed run restarts where it stopped (local engine), the
overwrite rule around it, and the engine flags' checks (``--engine ray`` itself: tests/cli/test_engine_ray.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from medseg.cli.main import main
from medseg.errors import DependencyError
from medseg.io import write_image
from medseg.io.manifest import MANIFEST_NAME, Manifest
from medseg.testing import disc_phantom


def _folder(root, n=6):
    for i in range(n):
        img, _ = disc_phantom((32, 32), seed=i)
        write_image(img, root / f"c{i}.nii.gz")
    return root


def _outputs(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != MANIFEST_NAME}


def test_a_killed_run_restarts_where_it_stopped(tmp_path):
    """SIGKILL mid-way (no clean-up at all), then the same command: done cases are skipped."""
    src = _folder(tmp_path / "in")
    assert main(["segment", str(src), str(tmp_path / "whole"), "--method", "otsu"]) == 0
    out = tmp_path / "out"
    # each case takes 0.5 s longer, so the kill lands mid-way
    script = textwrap.dedent(f"""
        import time
        import medseg.run as run
        real = run.process_case
        def slow(*a, **k):
            time.sleep(0.5)
            return real(*a, **k)
        run.process_case = slow
        from medseg.cli.main import main
        main(["segment", {str(src)!r}, {str(out)!r}, "--method", "otsu"])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            m = Manifest.read(out)
            if m is not None and m.summary()["done"] >= 1:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = Manifest.read(out).summary()
    assert 1 <= before["done"] < 6, before
    done = {n: (out / n).stat().st_mtime_ns for n, r in Manifest.read(out).cases.items() if r["state"] == "done"}
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 0  # resumes: no --force
    assert {n: (out / n).stat().st_mtime_ns for n in done} == done
    assert _outputs(out) == _outputs(tmp_path / "whole")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_resume_refuses_other_options_and_force_starts_afresh(tmp_path, capsys):
    src = _folder(tmp_path / "in", n=3)
    out = tmp_path / "out"
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 0
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 0  # same options: nothing to redo
    capsys.readouterr()
    before = _outputs(out)
    assert main(["segment", str(src), str(out), "--method", "otsu", "--min-size", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other options" in err[0] and "--force" in err[0] and "--min-size" in err[0]
    assert _outputs(out) == before
    assert main(["segment", str(src), str(out), "--method", "threshold", "--force"]) == 0
    assert json.loads((out / MANIFEST_NAME).read_text())["options"]["method"] == "threshold"


def test_a_changed_input_is_redone_and_an_unlisted_output_refused(tmp_path, capsys):
    src = _folder(tmp_path / "in", n=3)
    out = tmp_path / "out"
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 0
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("c*.nii.gz")}
    img, _ = disc_phantom((32, 32), seed=9)
    time.sleep(0.01)
    write_image(img, src / "c1.nii.gz")
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 0
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("c*.nii.gz")}
    assert now["c0.nii.gz"] == stamps["c0.nii.gz"] and now["c1.nii.gz"] != stamps["c1.nii.gz"]
    # a new input whose output exists already (not written by this run): today's refusal
    write_image(img, src / "c9.nii.gz")
    (out / "c9.nii.gz").write_bytes(b"mine")
    capsys.readouterr()
    assert main(["segment", str(src), str(out), "--method", "otsu"]) == 2
    assert "exist already" in capsys.readouterr().err
    assert (out / "c9.nii.gz").read_bytes() == b"mine"


def test_uncertainty_summary_is_complete_after_a_resume(tmp_path, monkeypatch):
    """The skipped cases' rows of uncertainty.csv come from the manifest."""
    from medseg.testing import make_dataset

    data = make_dataset(tmp_path / "d", kind="disc", n=3, shape=(32, 32))
    assert main(["train", str(data), "--method", "random-forest", "--out", str(tmp_path / "rf"),
                 "--n-estimators", "3"]) == 0
    src = _folder(tmp_path / "in", n=4)
    argv = ["predict", str(tmp_path / "rf"), str(src)]
    assert main(argv + [str(tmp_path / "whole"), "--uncertainty"]) == 0
    real_write = Manifest.write

    def write_then_interrupt(self):
        path = real_write(self)
        if self.summary()["done"] >= 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Manifest, "write", write_then_interrupt)
    assert main(argv + [str(tmp_path / "out"), "--uncertainty"]) == 130
    monkeypatch.setattr(Manifest, "write", real_write)
    assert not (tmp_path / "out" / "uncertainty.csv").exists()
    assert main(argv + [str(tmp_path / "out"), "--uncertainty"]) == 0
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "whole")


@pytest.mark.parametrize(("flags", "says"), [
    (["--address", "auto"], "--address joins a Ray cluster: it needs --engine ray"),
    (["--workers", "2"], "--workers sets the number of Ray actors: it needs --engine ray"),
    (["--engine", "ray", "--workers", "0"], "--workers must be at least 1, got 0"),
])
def test_bad_engine_flags_are_one_line(flags, says, tmp_path, capsys):
    src = _folder(tmp_path / "in", n=2)
    assert main(["segment", str(src), str(tmp_path / "out"), "--method", "otsu", *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"medseg: error: {says}"]
    assert not (tmp_path / "out").exists()


def test_ray_engine_without_ray_names_the_extra(monkeypatch):
    import medseg.run_engines as engines

    real = engines.importlib.util.find_spec
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(DependencyError, match=r"pip install 'medseg\[ray\]'"):
        engines.make_engine("ray", factory=dict)


def test_a_single_file_keeps_no_manifest(tmp_path):
    img, _ = disc_phantom((32, 32))
    src = write_image(img, tmp_path / "a.nii.gz")
    assert main(["segment", str(src), str(tmp_path / "out"), "--method", "otsu"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.nii.gz"]
