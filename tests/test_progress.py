"""Progress: a bar on a terminal, plain lines elsewhere, nothing with -q, no half bar on errors."""
from __future__ import annotations

import logging

import pytest

import medseg.progress as P
from medseg.cli.main import main
from medseg.io import write_image
from medseg.testing import disc_phantom


def test_off_a_terminal_plain_lines_not_bar_frames(caplog, monkeypatch):
    monkeypatch.setattr(P, "on_terminal", lambda: False)
    monkeypatch.setattr(P, "LOG_EVERY_S", 0.0)
    with caplog.at_level(logging.INFO, logger="medseg"):
        assert list(P.progress(range(3), desc="work", unit="case")) == [0, 1, 2]
    lines = [r.getMessage() for r in caplog.records if r.name == "medseg.progress"]
    assert lines[-1] == "work: 3/3 case" and all("\r" not in x and "%|" not in x for x in lines)
    caplog.clear()
    monkeypatch.setattr(P, "LOG_EVERY_S", 60.0)
    with caplog.at_level(logging.INFO, logger="medseg"):
        list(P.progress(range(3), desc="quick"))
    assert not [r for r in caplog.records if r.name == "medseg.progress"]  # short work: no line at all


def test_quiet_shows_nothing(caplog, monkeypatch):
    monkeypatch.setattr(P, "on_terminal", lambda: False)
    with caplog.at_level(logging.WARNING, logger="medseg"):
        list(P.progress(range(3), desc="work"))
    assert not [r for r in caplog.records if r.name == "medseg.progress"]


def test_a_bar_is_erased_when_the_work_fails(monkeypatch):
    monkeypatch.setattr(P, "on_terminal", lambda: True)
    logging.getLogger("medseg").setLevel(logging.INFO)
    try:
        bar = P.Progress(5, desc="work")
        assert bar._bar is not None
        tq = bar._bar
        with pytest.raises(RuntimeError), bar:
            bar.update(1)
            raise RuntimeError("boom")
        assert tq.leave is False and bar._bar is None
    finally:
        logging.getLogger("medseg").setLevel(logging.NOTSET)


def test_cli_output_in_a_log_has_no_bar_frames(tmp_path, capsys):
    for i in range(3):
        img, lab = disc_phantom((32, 32), seed=i)
        write_image(img, tmp_path / "in" / f"c{i}.tif")
        write_image(lab, tmp_path / "gt" / f"c{i}.png")
    assert main(["segment", str(tmp_path / "in"), str(tmp_path / "pred"), "--method", "otsu"]) == 0
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--out", str(tmp_path / "ev")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "%|" not in err
