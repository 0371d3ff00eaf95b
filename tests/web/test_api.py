"""The HTTP API of ``medseg serve``: every endpoint, every error status, escapes and saving."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from medseg.image import Image
from medseg.io import read_label
from medseg.testing import make_dataset
from medseg.web import create_app
from medseg.web.nifti_bytes import decode, encode

BASE = "http://127.0.0.1:8765"


def body_on_grid(app, case_id, arr):
    """NIfTI bytes of ``arr`` (spatial shape of the case) on the case's image grid."""
    img = app.state.store.image(case_id)
    return encode(Image(arr, img.spacing, img.origin, img.direction,
                        meta={k: v for k, v in img.meta.items() if k.startswith("nifti")}))


def current_label(client, case_id, shape):
    r = client.get(f"/api/cases/{case_id}/label")
    if r.status_code == 404:
        return np.zeros(shape, np.uint8), '"none"'
    arr, _ = decode(r.content)
    return (arr[0] if len(shape) == 2 else arr).astype(np.uint8), r.headers["etag"]


def wait_job(client, job_id, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        s = client.get(f"/api/jobs/{job_id}").json()
        if s["state"] in ("done", "failed", "cancelled"):
            return s
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {s}")


# ---------------------------------------------------------------------- listing and loading
def test_cases_lists_every_layout(client):
    cases = client.get("/api/cases").json()
    ids = [c["id"] for c in cases]
    assert ids[:3] == ["0:case_000", "0:case_001", "0:case_002"]
    assert "1:case_000" in ids and "2:0" in ids and "3:photo0" in ids
    for c in cases:
        assert {"id", "root", "shape", "spacing", "labelled", "modified"} <= set(c)
    by = {c["id"]: c for c in cases}
    assert by["0:case_000"]["shape"] == [48, 40] and by["0:case_000"]["labelled"]
    assert by["1:case_000"]["shape"] == [12, 20, 16] and by["1:case_000"]["spacing"] == [2.0, 1.0, 1.0]
    assert by["3:photo0"]["labelled"] is False and by["3:photo0"]["modified"] is None
    info = client.get("/api/info").json()
    assert [r["layout"] for r in info["roots"]] == ["folders", "msd", "npy", "plain"]
    assert info["roots"][0]["label_names"]["1"] == "foreground"
    assert client.get("/api/cases/0:case_000").json()["id"] == "0:case_000"


def test_image_and_label_are_nifti_with_geometry_and_etag(client, app):
    r = client.get("/api/cases/1:case_000/image")
    assert r.status_code == 200 and r.headers["etag"]
    arr, affine = decode(r.content)
    assert arr.shape == (12, 20, 16)
    assert np.allclose(np.abs(np.diag(affine))[:3], [1.0, 1.0, 2.0])  # (x, y, z) spacing
    lab = client.get("/api/cases/1:case_000/label")
    assert lab.status_code == 200 and lab.headers["etag"]
    truth = app.state.store.label("1:case_000").array
    assert np.array_equal(decode(lab.content)[0], truth)
    # 2D: a one-slice volume
    assert decode(client.get("/api/cases/0:case_000/image").content)[0].shape == (1, 48, 40)


def test_rgb_is_a_colour_nifti(tmp_path):
    from medseg.testing import make_dataset

    app = create_app([make_dataset(tmp_path / "f", kind="fundus", n=1, shape=(32, 32))])
    with TestClient(app, base_url=BASE) as c:
        arr, _ = decode(c.get("/api/cases/case_000/image").content)
        assert arr.dtype.names == ("R", "G", "B") and arr.shape == (1, 32, 32)


def test_unknown_case_and_missing_label_are_404(client):
    for url in ("/api/cases/nope/image", "/api/cases/nope/label", "/api/cases/nope", "/api/cases/nope/prediction",
                "/api/cases/3:photo0/label", "/api/cases/3:photo0/prediction", "/api/cases/0:case_000/metrics",
                "/api/jobs/x99", "/api/nothing"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert set(r.json()) == {"error"}, url
    assert client.delete("/api/jobs/x99").status_code == 404


# ---------------------------------------------------------------------- saving
@pytest.mark.parametrize("case_id", ["0:case_001", "1:case_001", "2:1", "3:photo1"])
def test_save_writes_the_layout_format_and_keeps_history(client, app, case_id):
    store = app.state.store
    entry = store.get(case_id)
    img = store.image(case_id)
    arr, tag = current_label(client, case_id, img.shape)
    before = store.label(case_id)
    idx = (slice(None),) * (img.ndim - 2) + (slice(2, 6), slice(3, 9))
    arr[idx] = 1
    r = client.put(f"/api/cases/{case_id}/label", content=body_on_grid(app, case_id, arr), headers={"If-Match": tag})
    assert r.status_code == 200, r.text
    assert r.json()["etag"] == r.headers["etag"] != tag
    saved = store.label(case_id)
    assert np.array_equal(saved.array, arr)
    path = entry.label_path
    assert path.is_file()
    if store.get(case_id).root.layout == "npy":
        assert np.array_equal(np.load(path)[1], arr)
        assert (path.parent / "labels_history").is_dir()
    else:
        on_disk = read_label(path)
        assert np.array_equal(on_disk.array, arr)
        assert np.allclose(on_disk.spacing, img.spacing)
        assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
        history = path.parent.parent / f"{path.parent.name}_history"
        assert history.is_dir() == (before is not None)
    # the case is now labelled, with a modification time
    info = client.get(f"/api/cases/{case_id}").json()
    assert info["labelled"] and info["modified"]
    # a second save with the old ETag is refused
    r2 = client.put(f"/api/cases/{case_id}/label", content=body_on_grid(app, case_id, arr), headers={"If-Match": tag})
    assert r2.status_code == 409 and "changed on disk" in r2.json()["error"]


def test_history_keeps_the_previous_version(client, app, roots):
    arr, tag = current_label(client, "0:case_000", (48, 40))
    old = arr.copy()
    arr[:] = 0
    assert client.put("/api/cases/0:case_000/label", content=body_on_grid(app, "0:case_000", arr),
                      headers={"If-Match": tag}).status_code == 200
    hist = list((roots[0] / "labels_history").iterdir())
    assert len(hist) == 1 and hist[0].name.startswith("case_000.")
    assert np.array_equal(read_label(hist[0]).array, old)


def test_save_refuses_a_file_changed_on_disk(client, app):
    arr, tag = current_label(client, "0:case_000", (48, 40))
    path = app.state.store.get("0:case_000").label_path
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10 ** 9))  # someone else touched it
    r = client.put("/api/cases/0:case_000/label", content=body_on_grid(app, "0:case_000", arr),
                   headers={"If-Match": tag})
    assert r.status_code == 409


def test_save_errors(client, app):
    arr, tag = current_label(client, "0:case_000", (48, 40))
    url = "/api/cases/0:case_000/label"
    # no If-Match
    assert client.put(url, content=body_on_grid(app, "0:case_000", arr)).status_code == 428
    # wrong shape
    r = client.put(url, content=encode(Image(np.zeros((10, 10), np.uint8))), headers={"If-Match": tag})
    assert r.status_code == 400 and "shape" in r.json()["error"]
    # right shape, wrong geometry
    img = app.state.store.image("0:case_000")
    r = client.put(url, content=encode(Image(arr, (2.0, 2.0), img.origin)), headers={"If-Match": tag})
    assert r.status_code == 400 and "geometry" in r.json()["error"]
    # non-integer and negative data
    r = client.put(url, content=body_on_grid(app, "0:case_000", arr.astype(np.float32) + 0.5),
                   headers={"If-Match": tag})
    assert r.status_code == 400 and "non-integer" in r.json()["error"]
    r = client.put(url, content=body_on_grid(app, "0:case_000", arr.astype(np.int16) - 1), headers={"If-Match": tag})
    assert r.status_code == 400 and "negative" in r.json()["error"]
    # not NIfTI
    r = client.put(url, content=b"hello", headers={"If-Match": tag})
    assert r.status_code == 400 and "NIfTI" in r.json()["error"]
    # unknown case
    assert client.put("/api/cases/zz/label", content=b"x", headers={"If-Match": tag}).status_code == 404


def test_body_size_limit(roots):
    app = create_app(roots, max_body=1000)
    with TestClient(app, base_url=BASE) as c:
        r = c.put("/api/cases/0:case_000/label", content=b"x" * 5000, headers={"If-Match": '"none"'})
        assert r.status_code == 413 and "limit" in r.json()["error"]

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"x" * 500

        r = c.post("/api/cases/0:case_000/scribbles", content=chunks())
        assert r.status_code == 413


# ---------------------------------------------------------------------- security
def test_token_required_everywhere(roots):
    app = create_app(roots, token="s3cret")
    with TestClient(app, base_url=BASE) as c:
        for url in ("/api/cases", "/api/methods", "/api/models", "/api/cases/0:case_000/image", "/api/jobs/x"):
            r = c.get(url)
            assert r.status_code == 401 and "token" in r.json()["error"], url
        assert c.put("/api/cases/0:case_000/label", content=b"x").status_code == 401
        assert c.post("/api/jobs", json={"kind": "segment"}).status_code == 401
        assert c.get("/").status_code == 401
        assert c.get("/api/cases", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/cases", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/api/cases", headers={"X-Medseg-Token": "s3cret"}).status_code == 200
        # ?token= on the first page load sets a cookie, then the page and the API work without it
        r = c.get("/?token=s3cret", follow_redirects=False)
        assert r.status_code == 303 and "medseg_token" in r.headers["set-cookie"]
        assert "httponly" in r.headers["set-cookie"].lower()
        assert c.get("/api/cases").status_code == 200
        assert c.get("/").status_code == 200


def test_non_loopback_host_needs_a_token(roots):
    from medseg.errors import ConfigError

    with pytest.raises(ConfigError, match="token"):
        create_app(roots, host="0.0.0.0")
    app = create_app(roots, host="0.0.0.0", token="t")
    with TestClient(app, base_url="http://myhost:8765") as c:
        assert c.get("/api/cases").status_code == 401
        assert c.get("/api/cases", headers={"X-Medseg-Token": "t"}).status_code == 200


def test_host_and_origin_checked(client):
    # DNS rebinding: another name resolving to 127.0.0.1
    assert client.get("/api/cases", headers={"Host": "evil.example:8765"}).status_code == 403
    assert client.get("/api/cases", headers={"Host": "localhost:8765"}).status_code == 200
    # CSRF: a cross-origin page posting to the API
    r = client.post("/api/jobs", json={"kind": "segment", "case": "0:case_000", "method": "otsu"},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert client.put("/api/cases/0:case_000/label", content=b"x", headers={"Origin": "null"}).status_code == 403
    assert client.get("/api/cases", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/api/cases", headers={"Origin": BASE}).status_code == 200


@pytest.mark.parametrize("url", [
    "/api/cases/../../etc/passwd/image",
    "/api/cases/..%2F..%2Fetc%2Fpasswd/image",
    "/api/cases/%2e%2e%2f%2e%2e%2fetc/image",
    "/api/cases/%252e%252e%252fetc%252fpasswd/image",
    "/api/cases/%2Fetc%2Fpasswd/label",
    "/api/cases//etc/passwd/label",
    "/static/..%2F__init__.py",
    "/static/../app.py",
    "/static/%2e%2e/app.py",
    "/api/cases/0:case_000%2F..%2F..%2Fx/image",
])
def test_path_escapes_are_refused(client, url):
    r = client.get(url)
    assert r.status_code in (403, 404), (url, r.status_code)
    assert b"root:" not in r.content and b"import" not in r.content


def test_absolute_and_escaping_parameters_are_refused(client):
    for params in ({"seed_mask": "/etc/passwd"}, {"seed_mask": "../../x.nii.gz"}, {"seed_mask": "..\\x"}):
        r = client.post("/api/jobs", json={"kind": "segment", "case": "0:case_000", "method": "region-growing",
                                           "params": params})
        assert r.status_code == 403, params
    assert client.post("/api/jobs", json={"kind": "segment", "case": "0:case_000",
                                          "recipe": "/etc/x.json"}).status_code == 403
    assert client.post("/api/jobs", json={"kind": "segment", "case": "0:case_000",
                                          "model": "/tmp/model"}).status_code == 404


def test_symlinks_out_of_a_root_are_not_served(tmp_path):
    from medseg.testing import make_dataset

    outside = make_dataset(tmp_path / "outside", n=1, shape=(16, 16))
    root = make_dataset(tmp_path / "root", n=2, shape=(16, 16))
    target = next((outside / "images").iterdir())
    (root / "images" / f"case_evil{''.join(target.suffixes)}").symlink_to(target)
    (root / "labels" / f"case_evil{''.join(target.suffixes)}").symlink_to(next((outside / "labels").iterdir()))
    app = create_app([root])
    with TestClient(app, base_url=BASE) as c:
        ids = [x["id"] for x in c.get("/api/cases").json()]
        assert "case_evil" not in ids and ids == ["case_000", "case_001"]
        assert c.get("/api/cases/case_evil/image").status_code == 404
    # a labels folder that is a symlink out of the root: its cases are not served either
    root2 = make_dataset(tmp_path / "root2", n=1, shape=(16, 16))
    import shutil

    shutil.rmtree(root2 / "labels")
    (root2 / "labels").symlink_to(outside / "labels", target_is_directory=True)
    app2 = create_app([root2])
    with TestClient(app2, base_url=BASE) as c:
        assert c.get("/api/cases").json() == []


# ---------------------------------------------------------------------- methods, jobs, scribbles, models
def test_methods_registry(client):
    methods = client.get("/api/methods").json()
    by = {m["name"]: m for m in methods}
    assert "otsu" in by and "region-growing" in by and "random-forest" in by
    assert by["otsu"]["family"] == "classical" and isinstance(by["otsu"]["params"], list)


def test_segment_job_then_prediction_and_metrics(client):
    r = client.post("/api/jobs", json={"kind": "segment", "case": "0:case_000", "method": "threshold",
                                       "params": {"value": 0.5}})
    assert r.status_code == 202
    s = wait_job(client, r.json()["id"])
    assert s["state"] == "done" and s["progress"] == 1.0 and s["result"]["case"] == "0:case_000"
    pred = client.get("/api/cases/0:case_000/prediction")
    assert pred.status_code == 200 and decode(pred.content)[0].shape == (1, 48, 40)
    m = client.get("/api/cases/0:case_000/metrics").json()
    assert 0.5 < m["dice"] <= 1.0 and m["hd95"] >= 0
    listed = {c["id"]: c for c in client.get("/api/cases").json()}["0:case_000"]
    assert listed["prediction"] and listed["metrics"]["dice"] == m["dice"]
    assert any(j["id"] == s["id"] for j in client.get("/api/jobs").json())


def test_region_growing_from_seeds(client):
    r = client.post("/api/jobs", json={"kind": "segment", "case": "1:case_000", "method": "region-growing",
                                       "params": {"seeds": "6,10,8"}})
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["id"])["state"] == "done"


def test_job_errors(client):
    post = lambda spec: client.post("/api/jobs", json=spec)  # noqa: E731
    assert post({"kind": "dance"}).status_code == 400
    assert post({"kind": "segment", "case": "nope", "method": "otsu"}).status_code == 404
    assert post({"kind": "segment", "case": "0:case_000"}).status_code == 400
    r = post({"kind": "segment", "case": "0:case_000", "method": "otsuu"})
    assert r.status_code == 400 and "otsu" in r.json()["error"]
    assert post({"kind": "segment", "case": "0:case_000", "method": "otsu", "params": {"bogus": 1}}).status_code == 400
    assert post({"kind": "segment", "case": "0:case_000", "model": "m7"}).status_code == 404
    assert post({"kind": "train", "method": "otsu"}).status_code == 400
    assert client.post("/api/jobs", content=b"{not json").status_code == 400
    assert client.post("/api/jobs", content=b"[1]").status_code == 400


def test_cancel_a_job(client, app):
    import threading

    gate = threading.Event()

    def slow(job):
        while not gate.wait(0.01):
            job.report(0.5, "working")
        return {}

    job = app.state.jobs.submit("segment", slow)
    time.sleep(0.05)
    r = client.delete(f"/api/jobs/{job.id}")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    assert wait_job(client, job.id)["state"] == "cancelled"
    gate.set()


def test_scribbles_give_a_prediction(client, app):
    img = app.state.store.image("0:case_001")
    truth = app.state.store.label("0:case_001").array
    scr = np.zeros(img.shape, np.uint8)
    scr[::5, ::5] = truth[::5, ::5] + 1  # scribble k marks label k-1
    r = client.post("/api/cases/0:case_001/scribbles", content=body_on_grid(app, "0:case_001", scr))
    assert r.status_code == 200, r.text
    pred = decode(r.content)[0][0]
    assert pred.shape == img.shape and set(np.unique(pred)) <= {0, 1}
    assert (pred == truth).mean() > 0.8
    assert client.get("/api/cases/0:case_001/prediction").status_code == 200
    empty = client.post("/api/cases/0:case_001/scribbles", content=body_on_grid(app, "0:case_001", scr * 0))
    assert empty.status_code == 400 and "scribble" in empty.json()["error"]
    one = client.post("/api/cases/0:case_001/scribbles", content=body_on_grid(app, "0:case_001", (scr > 0) * 1))
    assert one.status_code == 400
    wrong = client.post("/api/cases/0:case_001/scribbles", content=encode(Image(np.zeros((5, 5), np.uint8))))
    assert wrong.status_code == 400


def test_train_makes_a_new_model_version_each_time(client, roots):
    assert client.get("/api/models").json() == []
    ids = []
    for _ in range(2):
        r = client.post("/api/jobs", json={"kind": "train", "case": "0:case_000", "params": {"n_estimators": 5}})
        assert r.status_code == 202, r.text
        s = wait_job(client, r.json()["id"], timeout=120)
        assert s["state"] == "done", s
        ids.append(s["result"]["model"])
    assert ids == ["r0-random-forest-v001", "r0-random-forest-v002"]
    models = client.get("/api/models").json()
    assert [m["version"] for m in models] == [1, 2] and models[0]["trained_on"]
    assert (roots[0] / "models" / "random-forest" / "v001" / "model.json").is_file()
    r = client.post("/api/jobs", json={"kind": "segment", "case": "0:case_002", "model": ids[1]})
    assert wait_job(client, r.json()["id"])["state"] == "done"


def test_served_model_is_listed(tmp_path, roots):
    from medseg.methods.base import get_method
    from medseg.testing import disc_phantom

    img, lab = disc_phantom((32, 32), seed=0)
    model = get_method("random-forest")(n_estimators=3).fit([img], [lab])
    model.save(tmp_path / "rf")
    app = create_app(roots, models=[tmp_path / "rf"])
    with TestClient(app, base_url=BASE) as c:
        models = c.get("/api/models").json()
        assert models[0]["id"] == "m0" and models[0]["method"] == "random-forest" and models[0]["source"] == "served"
        r = c.post("/api/jobs", json={"kind": "segment", "case": "0:case_000", "model": "m0"})
        assert wait_job(c, r.json()["id"])["state"] == "done"


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200
    if "text/html" in r.headers["content-type"]:
        assert "<html" in r.text.lower()
    assert client.get("/static/nope.js").status_code == 404
    js = client.get("/static/app.js")  # shipped as app.js.gz: gzip on the wire, JavaScript in the browser
    if js.status_code == 200:
        assert js.headers["content-encoding"] == "gzip" and "javascript" in js.headers["content-type"]
        assert len(js.content) > 100_000  # httpx decoded it
        plain = client.get("/static/app.js", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == js.content


def test_bad_root_is_a_user_error(tmp_path):
    from medseg.errors import InputError

    with pytest.raises(InputError):
        create_app([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        create_app([tmp_path / "empty"])


@pytest.mark.parametrize("layout", ["msd", "folders"])
def test_partly_labelled_dataset_survives_a_restart(tmp_path, layout):
    """Labelling one case of an unlabelled dataset must not make it unreadable at the next start."""
    import shutil

    from medseg.errors import InputError
    from medseg.io import load_dataset

    root = make_dataset(tmp_path / "d", n=3, shape=(20, 24), layout=layout)
    labels = root / ("labelsTr" if layout == "msd" else "labels")
    shutil.rmtree(labels)  # images only, as a user starts annotating
    app = create_app([root])
    with TestClient(app, base_url=BASE) as c:
        cid = c.get("/api/cases").json()[0]["id"]
        img = app.state.store.image(cid)
        arr = np.zeros(img.shape, np.uint8)
        arr[3:8, 4:9] = 1
        r = c.put(f"/api/cases/{cid}/label", content=body_on_grid(app, cid, arr), headers={"If-Match": '"none"'})
        assert r.status_code == 200, r.text
    assert len(list(labels.iterdir())) == 1
    with pytest.raises(InputError, match="without"):  # the strict reading (train, inspect) still refuses
        load_dataset(root)
    app2 = create_app([root])  # the restart
    with TestClient(app2, base_url=BASE) as c:
        cases = c.get("/api/cases").json()
        assert len(cases) == 3 and sum(x["labelled"] for x in cases) == 1
        assert c.get(f"/api/cases/{cid}/label").status_code == 200


def test_npy_stack_started_by_a_save_marks_only_that_row(tmp_path):
    """An npy dataset without labels.npy: the first save must not make every other row an empty label."""
    from medseg.errors import InputError
    from medseg.io import load_dataset

    root = make_dataset(tmp_path / "d", n=3, shape=(16, 16), layout="npy")
    (root / "labels.npy").unlink()
    app = create_app([root])
    with TestClient(app, base_url=BASE) as c:
        cid = c.get("/api/cases").json()[1]["id"]
        arr = np.zeros((16, 16), np.uint8)
        arr[4:9, 4:9] = 1
        r = c.put(f"/api/cases/{cid}/label", content=body_on_grid(app, cid, arr), headers={"If-Match": '"none"'})
        assert r.status_code == 200, r.text
        assert [x["labelled"] for x in c.get("/api/cases").json()] == [False, True, False]
    ds = load_dataset(root)
    assert [c.label is not None for c in ds.cases] == [False, True, False]
    assert ds.load_label(ds.cases[0]) is None and ds.load_label(ds.cases[1]).array.sum() == 25
    from medseg.fingerprint import fingerprint

    with pytest.raises(InputError, match="no label map"):
        fingerprint(ds, strict=True)
