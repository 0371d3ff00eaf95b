"""The README's tours run as written inside the folder `medseg demo` makes."""
from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from medseg.cli.main import build_parser, main, parse
from medseg.demo import run_demo

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, lang: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    m = re.search(rf"```{lang}\n(.*?)```", text[start:], re.S)
    assert m, f"no {lang} block after {heading!r}"
    return m.group(1)


def tour_commands() -> list[list[str]]:
    """The `medseg ...` command lines of the command-line tour, comments stripped."""
    cmds = []
    for line in _block("## Five-minute tour: the command line", "bash").splitlines():
        line = line.strip()
        if line.startswith("medseg "):
            cmds.append(shlex.split(line, comments=True)[1:])
    return cmds


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo's data (classical part only: the tour trains its own models)."""
    root = tmp_path_factory.mktemp("readme") / "medseg-demo"
    run_demo(root, n_train=6, n_test=2, families=("classical",), report=lambda m: None)
    return root


def test_tour_starts_in_the_demo_folder():
    first = _block("## Five-minute tour: the command line", "bash").splitlines()[0]
    assert "cd medseg-demo" in first


def test_every_tour_line_parses_and_its_inputs_exist(demo_data):
    """Fast: each line parses with the real parser; every data path it names exists in the demo."""
    parser, modules = build_parser()
    cmds = tour_commands()
    assert len(cmds) >= 20
    for argv in cmds:
        if argv[0] == "--version":
            continue
        parse(parser, modules, argv)  # raises SystemExit(2) on a line that does not parse
        for tok in argv:
            if tok.startswith("data/"):
                assert (demo_data / tok).exists(), f"{' '.join(argv)}: {tok} is not in medseg-demo/"


@pytest.mark.slow
def test_tour_runs_as_written(demo_data):
    """Slow (trains a forest and a one-minute U-Net): every line exits 0; a second run refuses."""
    with _cwd(demo_data):
        for argv in tour_commands():
            if argv[0] == "--version":
                continue
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(argv)
            assert code == 0, f"medseg {' '.join(argv)} -> {code}: {err.getvalue()[-800:]}"
        assert (demo_data / "tour" / "eval" / "compare" / "report.html").is_file()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["segment", "head.nrrd", "head-otsu.nrrd", "--method", "otsu"])
        assert code == 2 and "--force" in err.getvalue()


def test_python_tour_runs(demo_data):
    code = _block("## Five-minute tour: Python", "python")
    out = io.StringIO()
    with _cwd(demo_data), contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    expected = re.search(r"print\(image\)\s+# (Image\(.*\))", code).group(1)
    assert printed[0] == expected
    assert (demo_data / "mask.nii.gz").is_file()
