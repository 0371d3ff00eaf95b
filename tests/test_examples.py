"""The examples run: examples/tutorial_unet.py --small trains both U-Nets and reports the four metrics."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_unet_small(tmp_path):
    spec = importlib.util.spec_from_file_location("tutorial_unet", ROOT / "examples" / "tutorial_unet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "tut"
    results = mod.main(["--small", "--out", str(out)])
    assert set(results) == {"tutorial", "medseg-default"}
    for r in results.values():
        for k in ("accuracy", "precision", "recall", "f1"):
            assert 0.0 <= r[k] <= 1.0 or r[k] != r[k]  # nan allowed when nothing is predicted
    assert (out / "train" / "images.npy").exists() and (out / "train" / "labels.npy").exists()
    plan = json.loads((out / "models" / "tutorial" / "model.json").read_text())["plan"]
    assert plan["net"] == "classic-unet" and plan["channels"] == [32, 64, 128, 128]
    assert plan["loss"] == "ce" and plan["weight_decay"] == 0.0 and plan["augment"] is False
    assert json.loads((out / "results.json").read_text())["small"] is True
