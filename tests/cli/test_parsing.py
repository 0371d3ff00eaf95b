"""Every documented form of every command line parses, with every method option, wherever it
stands (the parser's own lists drive the cases)."""
from __future__ import annotations

import dataclasses
import typing

import pytest

from medseg.cli.main import build_parser, main, parse
from medseg.config import field_type
from medseg.methods.base import METHODS

PARSER, MODULES = build_parser()


def _value(tp) -> str | None:
    """A valid-looking command-line value for a field type (None: a boolean flag)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    base = args[0] if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) \
        and args else tp
    if base is bool:
        return None
    if base is int:
        return "3"
    if base is float:
        return "0.5"
    if typing.get_origin(base) is tuple or base is tuple:
        return "1,2"
    return "x"


def _own(command):
    """The command's own option names (a method option of the same name is the command's)."""
    sub = next(a for a in PARSER._actions if a.dest == "command").choices[command]
    return {o for a in sub._actions for o in a.option_strings}


def _options(classes, command):
    own = _own(command)
    for cls in classes:
        for f in dataclasses.fields(cls):
            name = f.name.replace("_", "-")
            if f"--{name}" not in own:
                yield name, _value(field_type(cls, f))


TRAINABLE = [n for n in METHODS.names() if METHODS.get(n).trainable]


@pytest.mark.parametrize("method", TRAINABLE)
def test_train_three_folder_form_with_every_option(method):
    cls = METHODS.get(method)
    for opt, val in _options([cls.Params, cls.TrainParams], "train"):
        tail = [f"--{opt}"] + ([] if val is None else [val])
        for argv in (["train", "--images", "I", "--labels", "L", "--roi", "R", "--method", method, *tail, "--out", "M"],
                     ["train", "--images", "I", "--method", method, "--out", "M", *tail],
                     ["train", "DATA", "--method", method, *tail, "--out", "M"]):
            args, extra = parse(PARSER, MODULES, argv)
            assert args.out == "M" and args.method == method, argv
            assert args.dataset == ("DATA" if "DATA" in argv else None), argv
            assert extra == ([f"--{opt}"] if val is None else [f"--{opt}={val}"]), argv


@pytest.mark.parametrize("method", METHODS.names())
def test_segment_with_every_option_before_or_after_the_paths(method):
    for opt, val in _options([METHODS.get(method).Params], "segment"):
        tail = [f"--{opt}"] + ([] if val is None else [val])
        for argv in (["segment", "in.png", "out.png", "--method", method, *tail],
                     ["segment", "--method", method, *tail, "in.png", "out.png"],
                     ["segment", "in.png", "--method", method, *tail, "out.png", "-q"]):
            args, extra = parse(PARSER, MODULES, argv)
            assert (args.input, args.output) == ("in.png", "out.png"), argv
            assert extra == ([f"--{opt}"] if val is None else [f"--{opt}={val}"]), argv


def test_every_command_has_help_and_quiet_after_the_subcommand(capsys):
    for name in MODULES:
        assert main([name, "--help"]) == 0
        assert "usage: medseg " + name in capsys.readouterr().out
    args, _ = parse(PARSER, MODULES, ["inspect", "data", "-q"])
    assert args.quiet is True


def test_unknown_option_lists_each_valid_option_once(capsys):
    assert main(["train", "d", "--method", "unet", "--out", "m", "--compil", "on"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'compile'" in err
    listed = [t.strip(" ,\n") for t in err.split("valid:")[1].split(",")]
    assert listed.count("--compile") == 1 and listed.count("--device") == 1


def test_segment_roi_reaches_a_method_that_takes_one(tmp_path):
    """vesselness restricts its own work to ``--roi``; segment's ``--roi`` gives it that too."""
    import numpy as np

    from medseg.io import read_label, write_image
    from medseg.testing import fundus_phantom

    img, _, fov = fundus_phantom((64, 64), seed=1)
    write_image(img, tmp_path / "f.png")
    write_image(fov, tmp_path / "fov.png")
    assert main(["segment", str(tmp_path / "f.png"), str(tmp_path / "o.png"), "--method", "vesselness",
                 "--roi", str(tmp_path / "fov.png")]) == 0
    assert read_label(tmp_path / "o.png").array[np.asarray(fov.array) == 0].max() == 0


def test_unknown_command_suggests_and_methods_shows_recipes(capsys):
    assert main(["segmnt", "a", "b"]) == 2
    assert "did you mean 'segment'" in capsys.readouterr().err
    assert main(["methods", "retina-vessels"]) == 0
    out = capsys.readouterr().out
    assert "recipe retina-vessels" in out and "vesselness" in out


def test_segment_without_a_method_says_which_it_used(tmp_path, caplog):
    import logging

    from medseg.io import write_image
    from medseg.testing import disc_phantom

    img, _ = disc_phantom((24, 24))
    write_image(img, tmp_path / "a.tif")
    with caplog.at_level(logging.INFO, logger="medseg"):
        assert main(["segment", str(tmp_path / "a.tif"), str(tmp_path / "o.png")]) == 0
    assert any("no --method given: segmenting with otsu" in r.getMessage() for r in caplog.records)


def test_preprocess_lists_its_steps_and_what_each_parameter_means(capsys):
    assert main(["preprocess", "--list-steps"]) == 0
    out = capsys.readouterr().out
    assert "clip" in out and "Percentiles" in out and "window" in out
    assert main(["preprocess"]) == 2
    assert "--list-steps" in capsys.readouterr().err
