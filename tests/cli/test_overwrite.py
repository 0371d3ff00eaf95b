"""One overwrite rule for every command that writes: an existing output is refused before any
work (exit 2, one line, nothing changed) unless --force, which replaces it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli.main import COMMANDS, build_parser, main
from medseg.image import Image
from medseg.io import write_image
from medseg.testing import disc_phantom

#: commands that only print
READ_ONLY = {"methods"}
#: the demo replaces only a folder it made itself (a marker file), and refuses any other; `serve`
#: saves a label only over the version it loaded (ETag, 409 otherwise) and keeps the old one in a history folder
OWN_RULE = {"demo", "serve"}  # serve: saves need the ETag of what was loaded and keep the previous label


def _dataset(root, n=3):
    for i in range(n):
        img, lab = disc_phantom((32, 32), seed=i)
        write_image(img, root / "images" / f"case_{i:03d}.nii.gz")
        write_image(lab, root / "labels" / f"case_{i:03d}.nii.gz")
    return root


def _snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(argv, capsys, root):
    """Run argv expecting the overwrite refusal; nothing under root may change."""
    before = _snapshot(root)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and "exist" in err[0] and "--force" in err[0], err
    assert _snapshot(root) == before
    return err[0]


def test_every_writing_command_has_force():
    _, modules = build_parser()
    parser, _ = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in COMMANDS:
        if name in READ_ONLY | OWN_RULE:
            continue
        flags = {s for a in sub.choices[name]._actions for s in a.option_strings}
        assert "--force" in flags, f"medseg {name} writes but has no --force"


def test_segment_refuses_then_force_replaces(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    out = tmp_path / "pred"
    assert main(["segment", str(data / "images"), str(out), "--method", "otsu"]) == 0
    capsys.readouterr()
    (out / "case_001.nii.gz").write_bytes(b"stale")  # a previous run's output
    msg = _refused(["segment", str(data / "images"), str(out), "--method", "otsu"], capsys, tmp_path)
    assert "3 of 3 outputs exist already" in msg
    assert main(["segment", str(data / "images"), str(out), "--method", "otsu", "--force"]) == 0
    assert (out / "case_001.nii.gz").read_bytes() != b"stale"


def test_segment_single_file_and_probability_maps(tmp_path, capsys):
    img, _ = disc_phantom((32, 32))
    src = write_image(img, tmp_path / "in" / "a.nii.gz")
    dst = tmp_path / "out" / "a.nii.gz"
    dst.parent.mkdir()
    dst.write_bytes(b"old")
    msg = _refused(["segment", str(src), str(dst), "--method", "otsu"], capsys, tmp_path)
    assert msg.startswith(f"medseg: error: {dst}") and "the file exists already" in msg
    # a probability map of the same case counts as an output too
    dst.unlink()
    (tmp_path / "out" / "a_prob.nii.gz").write_bytes(b"old")
    data = _dataset(tmp_path / "data", n=2)
    assert main(["train", str(data), "--method", "random-forest", "--out", str(tmp_path / "rf"),
                 "--n-estimators", "5"]) == 0
    capsys.readouterr()
    _refused(["predict", str(tmp_path / "rf"), str(src), str(dst), "--probabilities"], capsys, tmp_path)
    assert main(["predict", str(tmp_path / "rf"), str(src), str(dst), "--probabilities", "--force"]) == 0
    assert (tmp_path / "out" / "a_prob.nii.gz").read_bytes() != b"old"


def test_preprocess_checks_outputs_before_saving_the_pipeline(tmp_path, capsys):
    data = _dataset(tmp_path / "data", n=2)
    out = tmp_path / "pre"
    out.mkdir()
    (out / "case_000.nii.gz").write_bytes(b"old")
    _refused(["preprocess", str(data / "images"), str(out), "--step", "zscore",
              "--save-pipeline", str(tmp_path / "p.json")], capsys, tmp_path)
    assert not (tmp_path / "p.json").exists()
    assert main(["preprocess", str(data / "images"), str(out), "--step", "zscore", "--force"]) == 0


def test_evaluate_and_compare(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    assert main(["segment", str(data / "images"), str(tmp_path / "pred"), "--method", "otsu"]) == 0
    ev = tmp_path / "ev"
    argv = ["evaluate", str(tmp_path / "pred"), str(data / "labels"), "--out", str(ev), "--no-html"]
    assert main(argv) == 0
    capsys.readouterr()
    _refused(argv, capsys, tmp_path)
    assert main(argv + ["--force"]) == 0
    # another file in the folder is not an output of evaluate: it is no reason to refuse
    (tmp_path / "ev2").mkdir()
    (tmp_path / "ev2" / "notes.txt").write_text("mine")
    assert main(argv[:4] + [str(tmp_path / "ev2"), "--no-html"]) == 0
    assert (tmp_path / "ev2" / "notes.txt").read_text() == "mine"
    cmp_argv = ["compare", str(ev), str(tmp_path / "ev2"), "--out", str(tmp_path / "cmp"), "--no-html"]
    assert main(cmp_argv) == 0
    capsys.readouterr()
    _refused(cmp_argv, capsys, tmp_path)
    assert main(cmp_argv + ["--force"]) == 0


def test_train_never_replaces_another_model_silently(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    model = tmp_path / "models" / "rf"
    base = ["train", str(data), "--out", str(model), "--n-estimators", "5"]
    assert main(base[:1] + [base[1], "--method", "random-forest"] + base[2:]) == 0
    info = json.loads((model / "model.json").read_text())
    assert info["method"] == "random-forest"
    capsys.readouterr()
    msg = _refused(["train", str(data), "--method", "extra-trees", "--out", str(model), "--n-estimators", "5"],
                   capsys, tmp_path)
    assert str(model) in msg
    assert main(["train", str(data), "--method", "extra-trees", "--out", str(model), "--n-estimators", "5",
                 "--force"]) == 0
    assert json.loads((model / "model.json").read_text())["method"] == "extra-trees"
    assert not [p for p in model.parent.iterdir() if p.name.startswith(".")]  # no backup left behind


def test_train_force_restores_the_old_model_when_training_fails(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    model = tmp_path / "m"
    assert main(["train", str(data), "--method", "random-forest", "--out", str(model), "--n-estimators", "5"]) == 0
    before = _snapshot(model)
    # labels that cannot be trained on: a dataset without any label maps
    (tmp_path / "bad" / "images").mkdir(parents=True)
    write_image(Image(np.zeros((8, 8), np.float32)), tmp_path / "bad" / "images" / "x.nii.gz")
    capsys.readouterr()
    code = main(["train", "--images", str(tmp_path / "bad" / "images"), "--labels", str(tmp_path / "bad" / "images"),
                 "--method", "random-forest", "--out", str(model), "--force"])
    assert code == 2
    assert _snapshot(model) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_resume_and_force_together_are_refused(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    code = main(["train", str(data), "--method", "unet", "--out", str(tmp_path / "u"), "--resume", "--force"])
    assert code == 2
    assert "not both" in capsys.readouterr().err


def test_inspect_json_and_convert(tmp_path, capsys):
    data = _dataset(tmp_path / "data", n=2)
    js = tmp_path / "fp.json"
    js.write_text("{}")
    _refused(["inspect", str(data), "--json", str(js)], capsys, tmp_path)
    assert main(["inspect", str(data), "--json", str(js), "--force"]) == 0
    dst = tmp_path / "x.nrrd"
    dst.write_bytes(b"old")
    _refused(["convert", str(data / "images" / "case_000.nii.gz"), str(dst)], capsys, tmp_path)


@pytest.mark.parametrize("name", ["segment", "predict", "preprocess", "evaluate", "compare", "train", "export",
                                  "inspect", "convert"])
def test_help_says_what_force_replaces(name, capsys):
    try:
        main([name, "--help"])
    except SystemExit:
        pass
    assert "--force" in capsys.readouterr().out
