"""The page in real headless Chromium (Playwright driving the system's chromium; no download):
load a 2D and a 3D case, paint, save and find the paint in the label file; scribbles give a
prediction; a segment job finishes and shows its layer. Skips with one reason without Chromium."""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.web

CHROMIUM = os.environ.get("MEDSEG_CHROMIUM") or next(
    (p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", shutil.which("chromium") or "",
                 shutil.which("google-chrome") or "") if p and Path(p).is_file()), None)
if CHROMIUM is None:
    pytest.skip("no Chromium found (set MEDSEG_CHROMIUM=/path/to/chromium to run the browser tests)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")

from medseg.io import read_label  # noqa: E402
from medseg.testing import make_dataset  # noqa: E402
from medseg.web import create_app  # noqa: E402
from medseg.web.app import STATIC  # noqa: E402

if not (STATIC / "app.js.gz").is_file():
    pytest.skip("the front end is not built (bash web/build.sh)", allow_module_level=True)

ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-gpu-sandbox"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("web")
    r2 = make_dataset(d / "d2", n=2, shape=(96, 96))
    r3 = make_dataset(d / "d3", kind="disc3d", n=1, shape=(24, 48, 48), layout="msd")
    app = create_app([r2, r3])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    end = time.time() + 20
    while not server.started and time.time() < end:
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}/", (r2, r3)
    server.should_exit = True
    t.join(10)


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as exc:  # noqa: BLE001 - a chromium that cannot start: skip with its reason
            pytest.skip(f"Chromium at {CHROMIUM} does not start: {str(exc).splitlines()[0]}")
        pg = browser.new_page(viewport={"width": 1400, "height": 850})
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(served[1])
        pg.wait_for_function("window.medseg && window.medseg.ready", timeout=30000)
        pg.errors = errors
        yield pg
        browser.close()


def open_case(page, case_id):
    n = page.evaluate("window.medseg.loads")
    page.click(f"tr.case[data-id='{case_id.replace(':', '%3A')}']")
    page.wait_for_function(f"window.medseg.ready && window.medseg.loads > {n}", timeout=30000)


def canvas_point(page, fx, fy):
    box = page.locator("#gl").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def pixel_at(page, x, y, shape):
    """The (row, column) of an in-plane image of ``shape`` drawn to fit the canvas, centred, under (x, y)."""
    box = page.locator("#gl").bounding_box()
    scale = min(box["width"] / shape[1], box["height"] / shape[0])
    left = box["x"] + (box["width"] - scale * shape[1]) / 2
    top = box["y"] + (box["height"] - scale * shape[0]) / 2
    return int((y - top) / scale), int((x - left) / scale)


def stroke(page, x, y, dx):
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x + dx * i / 10, y)
    page.mouse.up()


def save(page):
    n = page.evaluate("window.medseg.saves")
    page.keyboard.press("Control+s")
    page.wait_for_function(f"window.medseg.saves > {n}", timeout=15000)


def test_2d_paint_save_undo(served, page):
    app, _, (r2, _) = served
    open_case(page, "0:case_000")
    path = app.state.store.get("0:case_000").label_path
    before = read_label(path).array.copy()
    x, y = canvas_point(page, 0.45, 0.12)
    row, col = pixel_at(page, x, y, before.shape)
    page.keyboard.press("b")
    page.keyboard.press("1")
    stroke(page, x, y, 60)
    # undo and redo are kept: undo removes the stroke, redo brings it back
    painted = page.evaluate("window.medseg.nv.drawBitmap.reduce((a, v) => a + (v > 0), 0)")
    page.keyboard.press("Control+z")
    assert page.evaluate("window.medseg.nv.drawBitmap.reduce((a, v) => a + (v > 0), 0)") < painted
    page.keyboard.press("Control+y")
    assert page.evaluate("window.medseg.nv.drawBitmap.reduce((a, v) => a + (v > 0), 0)") == painted
    save(page)
    after = read_label(path).array
    changed = np.argwhere(after != before)
    assert len(changed) > 0, "the stroke did not reach the label file"
    assert set(np.unique(after[after != before])) == {1}
    # where it was painted: the stroke's row, from its start to the right, radius 2
    assert abs(changed[:, 0].mean() - row) <= 2 and np.ptp(changed[:, 0]) <= 2 * 2 + 2, (row, changed.min(0))
    _, col_end = pixel_at(page, x + 60, y, before.shape)
    assert col - 3 <= changed[:, 1].min() and changed[:, 1].max() <= col_end + 3, (col, col_end, changed.min(0))
    assert (Path(r2) / "labels_history").is_dir()
    assert not page.errors, page.errors


def test_3d_paint_save(served, page):
    app, _, _ = served
    open_case(page, "1:case_000")
    page.click("#views button[data-view='axial']")
    path = app.state.store.get("1:case_000").label_path
    before = read_label(path).array.copy()
    x, y = canvas_point(page, 0.4, 0.1)
    page.keyboard.press("b")
    stroke(page, x, y, 80)
    save(page)
    after = read_label(path).array
    diff = np.argwhere(after != before)
    assert len(diff) > 0
    assert len(set(diff[:, 0].tolist())) == 1, "a stroke in the axial view paints one slice"
    assert set(np.unique(after[after != before])) == {1}
    page.click("#views button[data-view='render']")  # the 3D render draws without errors
    page.wait_for_timeout(300)
    assert not page.errors, page.errors


def test_scribbles_give_a_prediction(served, page):
    open_case(page, "0:case_001")
    n = page.evaluate("window.medseg.predictions")
    truth = served[0].state.store.label("0:case_001").array
    page.keyboard.press("s")
    # background scribble (label 0) along the top rows, foreground scribbles across each disc
    page.select_option("#label-pick", "0")
    x, y = canvas_point(page, 0.05, 0.03)
    stroke(page, x, y, 500)
    page.select_option("#label-pick", "1")
    for cy, cx in np.argwhere(truth)[:: max(1, int(truth.sum()) // 3)][:3]:
        x, y = canvas_point(page, (cx + 0.5) / truth.shape[1], (cy + 0.5) / truth.shape[0])
        stroke(page, x - 3, y, 6)
    page.evaluate("window.medseg.scribbleMs = null")
    page.click("#scribble-run")
    page.wait_for_function(f"window.medseg.predictions > {n} && window.medseg.scribbleMs", timeout=20000)
    assert page.evaluate("window.medseg.scribbleMs") < 10000
    assert page.evaluate("window.medseg.nv.volumes.length") == 2
    assert not page.errors, page.errors


def test_segment_job_shows_its_layer(served, page):
    open_case(page, "0:case_000")
    n = page.evaluate("window.medseg.predictions")
    page.select_option("#method-pick", "method:threshold")
    page.fill("#params", '{"value": 0.5}')
    page.click("#run")
    page.wait_for_function(f"window.medseg.predictions > {n}", timeout=30000)
    assert page.evaluate("window.medseg.nv.volumes.length") == 2
    page.wait_for_function("document.querySelector('#metrics').textContent.includes('dice')", timeout=10000)
    assert not page.evaluate("document.querySelector('#accept').disabled")
    assert not page.errors, page.errors
