"""Evaluation on DRIVE's real files: pairing by leading number, FOV restriction, and a shifted prediction."""
import numpy as np
import pytest

from medseg.io import read_label, write_image
from medseg.metrics import overlap
from medseg.metrics.evaluation import evaluate


def test_drive_pairing_and_fov(real_data, tmp_path):
    root = real_data("DRIVE", "training")
    manual = sorted((root / "1st_manual").iterdir())[:3]
    preds = tmp_path / "pred"
    for f in manual:
        lab = read_label(f)
        write_image(lab.with_array(np.roll(lab.array, 1, axis=1).astype(np.uint8)), preds / f"{f.name[:2]}_pred.png")
    gt = tmp_path / "gt"
    gt.mkdir()
    for f in manual:
        (gt / f.name).symlink_to(f)
    table = evaluate(preds, gt, roi=root / "mask", images=root / "images")
    assert [r["case"] for r in table.rows] == [f.name.split("_")[0] for f in manual]
    r0 = table.rows[0]
    truth = read_label(manual[0]).array
    fov = read_label(root / "mask" / f"{manual[0].name[:2]}_training_mask.gif").array
    ref = overlap(np.roll(truth, 1, axis=1), truth, roi=fov)
    assert r0["dice"] == pytest.approx(ref["dice"])
    assert r0["tn"] + r0["tp"] + r0["fp"] + r0["fn"] == int((fov > 0).sum())
    assert 0.3 < r0["dice"] < 0.9 and r0["hd95"] >= 1.0
    assert table.sources[r0["case"]]["image"].name.startswith(manual[0].name[:2])


def test_hippocampus_subset_with_label_names(real_data, tmp_path):
    root = real_data("Hippocampus")
    labels = sorted((root / "labelsTr").iterdir())[:2]
    for f in labels:
        (tmp_path / "pred").mkdir(exist_ok=True)
        (tmp_path / "pred" / f.name).symlink_to(f)
    from medseg.errors import InputError

    with pytest.raises(InputError, match="--subset"):
        evaluate(tmp_path / "pred", root)
    table = evaluate(tmp_path / "pred", root, subset=True)
    assert len(table.cases) == 2 and table.labels == [1, 2]
    assert set(table.label_names) == {1, 2} and all(r["dice"] == 1.0 and r["hd95"] == 0.0 for r in table.rows)
    assert all(src["image"] is not None for src in table.sources.values())
