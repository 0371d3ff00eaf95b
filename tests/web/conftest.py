"""Fixtures of the web tests: small datasets in every layout and a client of the app."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from medseg.image import Image  # noqa: E402
from medseg.testing import make_dataset  # noqa: E402
from medseg.web import create_app  # noqa: E402

BASE = "http://127.0.0.1:8765"


@pytest.fixture
def roots(tmp_path):
    """Four roots: 2D folders (tif labels), 3D MSD, npy 2D stack, a plain folder of PNGs without labels."""
    r2 = make_dataset(tmp_path / "d2", n=3, shape=(48, 40))
    r3 = make_dataset(tmp_path / "d3", kind="disc3d", n=2, shape=(12, 20, 16), layout="msd")
    rn = make_dataset(tmp_path / "dn", n=3, shape=(24, 24), layout="npy")
    plain = tmp_path / "plain"
    plain.mkdir()
    from medseg.io import write_image

    for i in range(2):
        write_image(Image((np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)), plain / f"photo{i}.png")
    return [r2, r3, rn, plain]


@pytest.fixture
def app(roots):
    return create_app(roots)


@pytest.fixture
def client(app):
    with TestClient(app, base_url=BASE) as c:
        yield c
