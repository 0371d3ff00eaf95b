"""The command line on a corpus of damaged files: each run ends with exit 0 and a whole output,
or exit 2, one line on stderr and no output; the input is never changed."""
from __future__ import annotations

import json

import numpy as np
import pytest

from medseg.cli.main import main
from medseg.image import Image
from medseg.io import write_image

RNG = np.random.default_rng(1)
ARR2 = (RNG.random((20, 24)) * 200).astype(np.uint8)
ARR3 = RNG.random((6, 10, 12)).astype(np.float32)
FORMATS = {".png": ARR2, ".tif": ARR2, ".jpg": ARR2, ".bmp": ARR2, ".nii.gz": ARR3, ".nii": ARR3, ".nrrd": ARR3,
           ".mha": ARR3, ".npy": ARR3, ".npz": ARR3}


def _corpus(root):
    """(name, path) of damaged files: truncations at header boundaries, damage, random bytes, empty."""
    files = []
    for suffix, arr in FORMATS.items():
        good = root / f"good{suffix}"
        write_image(Image(arr), good)
        data = good.read_bytes()
        variants = {"empty": b"", "half": data[: len(data) // 2], "header": data[:48], "tail": data[:-7],
                    "random": RNG.integers(0, 256, 700, dtype=np.uint8).tobytes()}
        damaged = bytearray(data)
        i = len(data) * 2 // 3
        damaged[i:i + 16] = RNG.integers(0, 256, 16, dtype=np.uint8).tobytes()
        variants["damaged"] = bytes(damaged)
        for kind, blob in variants.items():
            p = root / f"{kind}_{suffix.strip('.').replace('.', '_')}{suffix}"
            p.write_bytes(blob)
            files.append((p.name, p))
    return files


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return _corpus(root)


COMMANDS = {
    "convert": lambda src, out: ["convert", str(src), str(out / "x.nii.gz")],
    "segment": lambda src, out: ["segment", str(src), str(out / "x.nii.gz"), "--method", "otsu"],
    "inspect": lambda src, out: ["inspect", str(src), "--json", str(out / "x.json")],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_on_damaged_files(command, corpus, tmp_path, capfd):
    outcomes = {0: 0, 2: 0}
    for name, src in corpus:
        before = src.read_bytes()
        out = tmp_path / name
        out.mkdir()
        capfd.readouterr()
        code = main(COMMANDS[command](src, out))
        err = capfd.readouterr().err
        assert code in (0, 2), f"{command} {name}: exit {code}: {err[-500:]}"
        outcomes[code] += 1
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("medseg: error:"), f"{command} {name}: {err!r}"
            assert not any(out.iterdir()), f"{command} {name} left {list(out.iterdir())}"
        else:
            assert "error" not in err.lower(), f"{command} {name}: {err!r}"
        assert src.read_bytes() == before, f"{command} changed its input {name}"
    assert outcomes[2] >= len(corpus) // 2  # most of the corpus is unreadable


@pytest.mark.parametrize("bad", [[1, 2], "text", {"labels": [0, 1]}, {"channel_names": {"x": 1}},
                                 {"file_ending": 3}, None])
def test_cli_on_bad_dataset_json(bad, tmp_path, capfd):
    from medseg.testing import make_dataset

    root = make_dataset(tmp_path / "d", n=2, layout="msd", shape=(16, 16))
    (root / "dataset.json").write_text(json.dumps(bad))
    capfd.readouterr()
    code = main(["inspect", str(root)])
    err = capfd.readouterr().err
    if bad is None:  # "null": no information, the files still define the dataset
        assert code in (0, 2)
    else:
        assert code == 2 and err.count("\n") == 1 and "dataset.json" in err, err
