"""medseg serve: time to first render of a 256³ volume (headless Chromium), the scribble round trip
on a 512² image and the label save latency; with --screenshots DIR, a screenshot of each view.

Usage: .venv/bin/python benchmarks/bench_web.py [--screenshots docs/web] [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn

from medseg.image import Image
from medseg.io import write_image
from medseg.testing import disc_phantom, make_dataset
from medseg.web import create_app
from medseg.web.nifti_bytes import decode, encode

ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox"]


def build(d: Path) -> list[Path]:
    big = d / "big"
    img, lab = disc_phantom((256, 256, 256), seed=0, spacing=(1.0, 0.8, 0.8))
    write_image(img.with_array(img.array.astype(np.float32)), big / "images" / "vol256.nii.gz")
    write_image(lab.with_array(lab.array.astype(np.uint8)), big / "labels" / "vol256.nii.gz")
    flat = make_dataset(d / "flat", n=3, shape=(512, 512))
    head = make_dataset(d / "head", kind="head", n=1, layout="msd")
    fundus = make_dataset(d / "fundus", kind="fundus", n=1, shape=(256, 256))
    return [big, flat, head, fundus]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--screenshots", type=Path)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--port", type=int, default=8791)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp())
    t = time.perf_counter(); roots = build(d); print(f"datasets written in {time.perf_counter() - t:.1f} s")
    app = create_app(roots)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=a.port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True); th.start()
    while not server.started:
        time.sleep(0.02)
    from fastapi.testclient import TestClient

    c = TestClient(app, base_url=f"http://127.0.0.1:{a.port}")
    # scribble round trip on 512² (server side: decode, fit the forest, predict, encode)
    truth = app.state.store.label("1:case_000").array
    img = app.state.store.image("1:case_000")
    scr = np.zeros(truth.shape, np.uint8); scr[::16, ::16] = truth[::16, ::16] + 1
    body = encode(Image(scr, img.spacing, img.origin, img.direction))
    times = []
    for _ in range(3):
        t = time.perf_counter(); r = c.post("/api/cases/1:case_000/scribbles", content=body); times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
    print(f"scribble round trip 512x512: median {statistics.median(times):.2f} s ({', '.join(f'{x:.2f}' for x in times)})")
    # save latency (512² label, folders layout: history copy + atomic write)
    lat = []
    for i in range(5):
        r = c.get("/api/cases/1:case_001/label"); arr = decode(r.content)[0][0].astype(np.uint8); arr[i, :] = 1
        t = time.perf_counter()
        s = c.put("/api/cases/1:case_001/label", content=encode(Image(arr, img.spacing)), headers={"If-Match": r.headers["etag"]})
        lat.append(time.perf_counter() - t); assert s.status_code == 200, s.text
    print(f"save latency 512x512: median {1000 * statistics.median(lat):.0f} ms")
    r = c.get("/api/cases/0:vol256/label"); arr = decode(r.content)[0].astype(np.uint8)
    t = time.perf_counter()
    s = c.put("/api/cases/0:vol256/label", content=encode(app.state.store.label("0:vol256").with_array(arr)),
              headers={"If-Match": r.headers["etag"]})
    print(f"save latency 256³ (encode + upload + write .nii.gz): {time.perf_counter() - t:.2f} s ({s.status_code})")

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=a.chromium, args=ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 850})
        page.goto(f"http://127.0.0.1:{a.port}/")
        page.wait_for_function("window.medseg && window.medseg.ready", timeout=120000)
        print(f"first render of the 256³ volume (image + label, in the browser): {page.evaluate('window.medseg.loadMs') / 1000:.2f} s "
              "(software WebGL)")
        shots = a.screenshots
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "volume-multiplanar.png"))
            page.click("#views button[data-view='render']"); page.wait_for_timeout(1500)
            page.screenshot(path=str(shots / "volume-3d.png"))

        def open_case(cid):
            n = page.evaluate("window.medseg.loads")
            page.click(f"tr.case[data-id='{cid.replace(':', '%3A')}']")
            page.wait_for_function(f"window.medseg.ready && window.medseg.loads > {n}", timeout=60000)

        open_case("2:case_000")
        if shots:
            page.screenshot(path=str(shots / "head-multiplanar.png"))
        open_case("3:case_000")
        if shots:
            page.screenshot(path=str(shots / "rgb-fundus.png"))
        open_case("1:case_002")
        page.select_option("#method-pick", "method:otsu")
        n = page.evaluate("window.medseg.predictions")
        page.click("#run")
        page.wait_for_function(f"window.medseg.predictions > {n}", timeout=60000)
        page.wait_for_timeout(500)
        if shots:
            page.screenshot(path=str(shots / "segment-job-prediction.png"))
            page.keyboard.press("b")
            box = page.locator("#gl").bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2); page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.25, steps=10); page.mouse.up()
            page.screenshot(path=str(shots / "annotate-brush.png"))
            page.click("#cases th[data-key='dice']")
            page.screenshot(path=str(shots / "browser-sorted-by-dice.png"))
            print(f"screenshots in {shots}")
        b.close()
    server.should_exit = True; th.join(10)


if __name__ == "__main__":
    main()
