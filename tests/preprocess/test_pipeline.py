"""Pipeline values: parse, apply, JSON round trip, errors; the `medseg preprocess` command."""
import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.errors import ConfigError
from medseg.io import read_image, write_image
from medseg.preprocess import Pipeline, Step, clahe, gaussian, select_channel
from medseg.testing import fundus_phantom


def test_pipeline_applies_steps_in_order():
    img, _, _ = fundus_phantom((64, 64))
    p = Pipeline.parse(["channel:index=green", "clahe", "gaussian:sigma=1"])
    expected = gaussian(clahe(select_channel(img, index="green")), sigma=1.0)
    assert np.allclose(p(img).array, expected.array)
    assert p.steps[2].params == {"sigma": 1.0}


def test_pipeline_json_round_trip(tmp_path):
    p = Pipeline.parse(["window:preset=lung", "resample:spacing=1.5", "clip:lower=1,upper=99", "gamma:gamma=0.5"])
    f = p.save(tmp_path / "p.json")
    q = Pipeline.load(f)
    assert q == p
    assert json.loads(f.read_text())["steps"][0] == {"step": "window", "params": {"preset": "lung"}}
    assert Pipeline.from_dict(q.to_dict()) == p
    assert Pipeline([{"step": "gaussian", "params": {"sigma": "2"}}]).steps[0].params["sigma"] == 2.0


def test_pipeline_errors(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'gaussian'"):
        Pipeline.parse(["gausian"])
    with pytest.raises(ConfigError, match="did you mean 'sigma'"):
        Step("gaussian", {"sigm": 1})
    with pytest.raises(ConfigError, match="expected float"):
        Step("gaussian", {"sigma": "wide"})
    (tmp_path / "bad.json").write_text('{"format": "medseg-preprocess", "stepz": []}')
    with pytest.raises(ConfigError, match="unknown key"):
        Pipeline.load(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="not found"):
        Pipeline.load(tmp_path / "missing.json")


def test_cli_preprocess_file_folder_and_pipeline(tmp_path, capsys):
    img, _, _ = fundus_phantom((64, 64))
    src = tmp_path / "in"
    src.mkdir()
    write_image(img, src / "a.png")
    write_image(img, src / "b.png")
    before = (src / "a.png").read_bytes()
    rc = main(["preprocess", str(src / "a.png"), str(tmp_path / "a.tif"), "--step", "channel:index=green",
               "--step", "clahe", "--step", "gaussian:sigma=1", "--save-pipeline", str(tmp_path / "p.json")])
    assert rc == 0
    out = read_image(tmp_path / "a.tif")
    assert out.shape == (64, 64) and not out.has_channels
    assert (src / "a.png").read_bytes() == before
    assert Pipeline.load(tmp_path / "p.json") == Pipeline.parse(["channel:index=green", "clahe", "gaussian:sigma=1"])
    rc = main(["preprocess", str(src), str(tmp_path / "out"), "--pipeline", str(tmp_path / "p.json")])
    assert rc == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.tif"]
    assert np.allclose(read_image(tmp_path / "out" / "a.tif").array, out.array, atol=1e-6)
    assert main(["preprocess", str(src / "a.png"), str(tmp_path / "x.tif"), "--step", "gausian"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'gaussian'" in err and len(err.strip().splitlines()) == 1
    assert main(["preprocess", str(src / "a.png"), str(tmp_path / "x.tif")]) == 2
    assert not (tmp_path / "x.tif").exists()
