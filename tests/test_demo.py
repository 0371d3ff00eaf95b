import json

import pytest

from medseg.cli.main import main
from medseg.demo import run_demo


def test_demo_classical_part(tmp_path):
    res = run_demo(tmp_path / "d", n_train=2, n_test=2, families=("classical",), report=lambda m: None)
    names = {r.name for r in res}
    assert names == {"retina-vessels", "brain-mask-3d"}
    for r in res:
        assert (r.eval_dir / "metrics.csv").is_file() and (r.eval_dir / "report.html").is_file()
        assert r.dice > 0.6, r  # phantoms are easy: a broken pipeline scores far lower
        summary = json.loads((r.eval_dir / "summary.json").read_text())
        assert summary


def test_demo_refuses_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("precious")
    code = main(["demo", "--out", str(tmp_path), "--dl-minutes", "0"])
    assert code == 2 and "not made by medseg demo" in capsys.readouterr().err
    assert (tmp_path / "mine.txt").read_text() == "precious"


@pytest.mark.slow
def test_full_demo_cli(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "compare/report.html" in out
    assert (tmp_path / "demo" / "compare" / "report.html").is_file()
