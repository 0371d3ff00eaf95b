"""inspect: broken layouts are errors; problems are listed, and --strict turns them into exit 2."""
from __future__ import annotations

import numpy as np

from medseg.cli.main import main
from medseg.io import read_image, write_image
from medseg.testing import make_dataset


def test_layout_part_that_is_a_file_and_empty_datasets(tmp_path, capsys):
    root = make_dataset(tmp_path / "a", n=2, shape=(24, 24))
    for p in (root / "labels").iterdir():
        p.unlink()
    (root / "labels").rmdir()
    (root / "labels").write_text("not a folder")
    assert main(["inspect", str(root)]) == 2
    assert "labels is a file, not a folder" in capsys.readouterr().err
    msd = make_dataset(tmp_path / "m", n=2, layout="msd", shape=(24, 24))
    for p in (msd / "imagesTr").iterdir():
        p.unlink()
    for p in (msd / "labelsTr").iterdir():
        p.unlink()
    assert main(["inspect", str(msd)]) == 2
    assert "no cases" in capsys.readouterr().err


def test_problems_listed_and_strict(tmp_path, capsys):
    root = make_dataset(tmp_path / "d", n=3, shape=(24, 24), suffix=".nii.gz")
    im = read_image(root / "images" / "case_000.nii.gz")
    a = im.array.astype(float)
    a[0, 0] = np.nan
    write_image(im.with_array(a), root / "images" / "case_000.nii.gz")
    assert main(["inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "nonfinite" in out and "problems   none" not in out
    assert main(["inspect", str(root), "--strict"]) == 2
    assert "--strict: 1 problem(s)" in capsys.readouterr().err
    clean = make_dataset(tmp_path / "c", n=2, shape=(24, 24))
    assert main(["inspect", str(clean), "--strict"]) == 0
