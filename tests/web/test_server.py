"""``medseg serve`` as a real process: the printed URL, load (100 concurrent requests, 20
concurrent saves), a clean stop on Ctrl-C, and the command's user errors."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

from medseg.cli.main import main  # noqa: E402
from medseg.image import Image  # noqa: E402
from medseg.io import read_label  # noqa: E402
from medseg.testing import make_dataset  # noqa: E402
from medseg.web.nifti_bytes import decode, encode  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, port):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "medseg", "serve", *args, "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    assert m, line + proc.stdout.read() if proc.poll() is not None else line
    url = m.group(1)
    base = url.split("?")[0].rstrip("/")
    for _ in range(200):
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, url, base


def test_serve_under_load_and_stops_cleanly(tmp_path):
    root = make_dataset(tmp_path / "d", n=20, shape=(64, 64))
    port = free_port()
    proc, url, base = start([str(root), "--token", "tok"], port)
    try:
        assert url == f"http://127.0.0.1:{port}/?token=tok"
        h = {"X-Medseg-Token": "tok"}
        with httpx.Client(base_url=base, headers=h, timeout=30) as c:
            cases = c.get("/api/cases").json()
            assert len(cases) == 20
            urls = [f"/api/cases/{cases[i % 20]['id']}/{'image' if i % 3 else 'label'}" for i in range(60)]
            urls += ["/api/cases", "/api/methods", "/api/models", "/api/info"] * 10

            with ThreadPoolExecutor(32) as ex:
                codes = list(ex.map(lambda u: c.get(u).status_code, urls))
            assert len(codes) == 100 and codes.count(200) == 100, codes

            def save(case):
                r = c.get(f"/api/cases/{case['id']}/label")
                arr, affine = decode(r.content)
                arr = arr[0].astype(np.uint8)
                arr[5:10, 5:10] = 1
                img = Image(arr, tuple(case["spacing"]))
                resp = c.put(f"/api/cases/{case['id']}/label", content=encode(img),
                             headers={"If-Match": r.headers["etag"]})
                return resp.status_code, arr

            with ThreadPoolExecutor(20) as ex:
                results = list(ex.map(save, cases))
            assert [s for s, _ in results] == [200] * 20
        for case, (_, arr) in zip(cases, results):
            assert np.array_equal(read_label(root / "labels" / f"{case['id']}.tif").array, arr)
        assert httpx.get(base + "/api/cases", timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "stopped" in out and "Traceback" not in out
    leftovers = [p for p in (root / "labels").iterdir() if p.name.startswith(".")]
    assert not leftovers


def test_serve_user_errors(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medseg: error:") and len(err.strip().splitlines()) == 1
    root = make_dataset(tmp_path / "d", n=1, shape=(16, 16))
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["serve", str(root), "--port", str(s.getsockname()[1])]) == 2
        assert "cannot listen" in capsys.readouterr().err
    assert main(["serve", str(root), "--model", str(tmp_path / "nomodel")]) == 2
