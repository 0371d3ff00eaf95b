import math

import pytest

from medseg.errors import InputError
from medseg.metrics.compare import load_runs, paired_tests, rank_runs
from medseg.metrics.evaluation import MetricsTable


def _run(tmp_path, name, dice, hd95, vd=None):
    rows = [{"case": f"c{i}", "label": 1, "label_name": "", "dice": d, "hd95": h, "nsd": d,
             "volume_difference": (vd or [0.0] * len(dice))[i], "tp": 1, "fp": 0, "fn": 0, "tn": 1, "empty": ""}
            for i, (d, h) in enumerate(zip(dice, hd95))]
    (tmp_path / name).mkdir()
    MetricsTable(rows, [1]).to_csv(tmp_path / name / "metrics.csv")
    return tmp_path / name


def test_ranking_and_paired_tests(tmp_path):
    a = _run(tmp_path, "a", [0.9, 0.8, 0.85, 0.7], [1, 2, 1.5, 3], vd=[0.1, -0.2, 0.0, 0.1])
    b = _run(tmp_path, "b", [0.6, 0.5, 0.55, float("nan")], [5, math.inf, 4, 6], vd=[-0.5, 0.5, 0.3, -0.4])
    runs = load_runs([a, b])
    ranking = rank_runs(runs, ("dice", "hd95"))
    assert [r["run"] for r in ranking] == ["a", "b"] and ranking[0]["mean_rank"] == 1.0
    assert rank_runs(runs, ("volume_difference",))[0]["run"] == "a"  # |vd| closer to 0 wins
    t = paired_tests(runs, "hd95", 1)[0]
    assert t["a_better"] == 4 and t["b_better"] == 0 and t["n"] == 4
    d = paired_tests(runs, "dice", 1)[0]
    assert d["n"] == 3 and d["median_difference"] == pytest.approx(0.3)


def test_compare_needs_two_evaluation_folders(tmp_path):
    a = _run(tmp_path, "a", [0.9], [1])
    with pytest.raises(InputError, match="at least two"):
        load_runs([a])
    with pytest.raises(InputError, match="no metrics.csv"):
        load_runs([a, tmp_path])


def test_every_number_comes_from_the_shared_cases(tmp_path, caplog):
    """One run covers 2 of 4 cases: ranking and means both use those 2; the warning comes once."""
    import json as _json
    import logging

    from medseg.metrics.catalogue import METRICS
    from medseg.metrics.compare import Run, rank_runs, write_comparison
    from medseg.metrics.evaluation import MetricsTable

    def run(name, dice):
        rows = [{"case": f"c{i}", "label": 1, **{m: 1.0 for m in METRICS}, "dice": d} for i, d in dice.items()]
        return Run(name, tmp_path / name, MetricsTable(rows, [1]), {})

    full = run("full", {0: 0.2, 1: 0.2, 2: 0.9, 3: 0.9})     # mean 0.55 over 4, 0.2 over the shared 2
    part = run("part", {0: 0.5, 1: 0.5})                      # mean 0.5 over its 2
    ranking = rank_runs([full, part], ("dice",))
    assert ranking[0]["run"] == "part" and ranking[0]["mean_dice"] == 0.5
    assert ranking[1]["mean_dice"] == pytest.approx(0.2)     # not 0.55: the same 2 cases
    with caplog.at_level(logging.WARNING, logger="medseg.metrics.compare"):
        write_comparison([full, part], tmp_path / "cmp", metrics=("dice",))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "c2" in warnings[0].getMessage()
    doc = _json.loads((tmp_path / "cmp" / "ranking.json").read_text())
    assert doc["n_shared_cases"] == 2 and doc["dropped_cases"] == {"full": ["c2", "c3"]}
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "over the 2 cases that every run" in page and "2: c2, c3" in page


def test_holm_adjusts_a_known_family():
    from medseg.metrics.compare import holm

    # hand-computed: sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.04·1, 0.06) = 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1 (0.5·2), then non-decreasing
    adj = holm([0.02, float("nan"), 0.01])
    assert math.isnan(adj[1]) and adj[0] == pytest.approx(0.02) and adj[2] == pytest.approx(0.02)  # m = 2


def test_smallest_p_comes_from_the_test():
    from medseg.metrics.compare import cases_needed, smallest_p

    for n in (1, 3, 4, 5, 6, 8, 10):
        assert smallest_p(n) == pytest.approx(2 / 2 ** n)  # exact two-sided signed-rank minimum
    assert smallest_p(5) > 0.05 > smallest_p(6)
    assert cases_needed() == 6 and cases_needed(m=3) == 7


def _runs(tmp_path, n, shift=0.1):
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.8, n)
    a = _run(tmp_path, "a", list(base + shift), list(rng.uniform(1, 2, n)))
    b = _run(tmp_path, "b", list(base), list(rng.uniform(3, 4, n)))
    c = _run(tmp_path, "c", list(base + shift / 2), list(rng.uniform(2, 3, n)))
    return load_runs([a, b, c])


def test_comparison_writes_raw_and_holm_p_values(tmp_path):
    import json

    from medseg.metrics.compare import holm, write_comparison

    runs = _runs(tmp_path, 12)
    write_comparison(runs, tmp_path / "cmp", metrics=("dice", "hd95"))
    doc = json.loads((tmp_path / "cmp" / "ranking.json").read_text())
    tests = doc["paired_tests"]
    assert len(tests) == 6 and doc["multiple_comparisons"] == {"method": "holm", "m": 6,
                                                                "family": "every paired test in this file"}
    raw = [t["p_value"] for t in tests]
    assert [t["p_holm"] for t in tests] == pytest.approx(holm(raw))
    assert all(t["p_holm"] >= t["p_value"] for t in tests)
    assert any(t["p_holm"] > t["p_value"] for t in tests)  # the correction changes something
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "p (raw)" in page and "p (Holm, m=6)" in page and "Holm" in page
    assert "Too few cases" not in page  # 12 cases can reach 0.05


def test_small_n_note_says_no_test_can_reach_significance(tmp_path):
    from medseg.metrics.compare import write_comparison

    runs = _runs(tmp_path, 4)
    write_comparison(runs, tmp_path / "cmp", metrics=("dice",))
    page = (tmp_path / "cmp" / "report.html").read_text()
    assert "Too few cases for any test here to reach p &lt; 0.05" in page
    assert "smallest p-value" in page and "0.1250" in page  # 2 / 2**4, from the test
    assert "at least 6 differing cases" in page and "7 after Holm" in page  # 3 tests in the family


def test_small_n_note_follows_n(tmp_path):
    """n = 5 still cannot reach 0.05 (smallest p 0.0625); n = 6 can, so no note."""
    from medseg.metrics.compare import write_comparison

    (tmp_path / "five").mkdir()
    (tmp_path / "six").mkdir()
    write_comparison(_runs(tmp_path / "five", 5), tmp_path / "c5", metrics=("dice",))
    assert "0.0625" in (tmp_path / "c5" / "report.html").read_text()
    write_comparison(_runs(tmp_path / "six", 6)[:2], tmp_path / "c6", metrics=("dice",))
    assert "Too few cases" not in (tmp_path / "c6" / "report.html").read_text()
