"""The documentation site: it builds strictly, its examples run, its generated pages are current.

* every ```pycon block in docs/ is run as a doctest (one namespace per page, in page order), so
  every number a page prints is computed by the code on it;
* the CNN primer's NumPy layers are checked against torch.nn.functional;
* docs/reference/cli.md matches the parser and the gallery lists every registered method;
* ``mkdocs build --strict`` passes (skipped with one line when mkdocs is not installed).
"""
from __future__ import annotations

import doctest
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "reports" not in p.parts and "web" not in p.parts)
BLOCK = re.compile(r"^```pycon\n(.*?)^```", re.S | re.M)


def run_page(page: Path) -> dict:
    """Run every pycon block of ``page`` as doctests sharing one namespace; return it."""
    blocks = BLOCK.findall(page.read_text())
    globs: dict = {"__name__": "__docs__"}
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    for i, block in enumerate(blocks):
        test = parser.get_doctest(block, globs, f"{page.name}[{i}]", str(page), 0)
        runner.run(test, clear_globs=False)
        globs = test.globs
    res = runner.summarize(verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples failed in {page.relative_to(ROOT)}"
    return globs


@pytest.mark.parametrize("page", [p for p in PAGES if "```pycon" in p.read_text()], ids=lambda p: p.name)
def test_page_examples(page):
    run_page(page)


def test_primer_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    g = run_page(DOCS / "cnn-primer.md")
    rng = np.random.default_rng(0)
    t = lambda a: torch.as_tensor(np.asarray(a, np.float64))[None, None]  # noqa: E731
    for image, kernel in ((g["image"], g["kernel"]), (rng.normal(size=(7, 6)), rng.normal(size=(3, 3)))):
        for pad in (0, 1):
            ref = F.conv2d(t(image), t(kernel), padding=pad)[0, 0].numpy()
            np.testing.assert_allclose(g["conv2d"](image, kernel, padding=pad), ref, atol=1e-9)
    for x in (np.array([[1, 3, 2, 1], [4, 6, 5, 0], [7, 2, 9, 8], [1, 0, 3, 4]]), rng.normal(size=(6, 8))):
        np.testing.assert_allclose(g["max_pool2d"](x), F.max_pool2d(t(x), 2)[0, 0].numpy())
    z = torch.tensor([-2.0, 0.0, 3.0], dtype=torch.float64)
    np.testing.assert_allclose(g["relu"](z.numpy()), F.relu(z).numpy())
    np.testing.assert_allclose(g["sigmoid"](z.numpy()), torch.sigmoid(z).numpy())
    np.testing.assert_allclose(g["softmax"](z.numpy()), F.softmax(z, 0).numpy())
    W, x = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), np.array([1, 2, 3])
    lin = F.linear(torch.tensor(x, dtype=torch.float64), torch.tensor(W, dtype=torch.float64))
    assert lin.tolist() == g["dense"](W, x).tolist() == [14, 32, 50]
    small, k = np.array([[1, 2], [3, 4]]), np.array([[1, 0], [0, -1]])
    for a, kk in ((small, k), (rng.normal(size=(3, 4)), rng.normal(size=(2, 2)))):
        ref = F.conv_transpose2d(t(a), t(kk), stride=2)[0, 0].numpy()
        np.testing.assert_allclose(g["conv_transpose2d"](a, kk), ref, atol=1e-9)
        up = F.interpolate(t(a), scale_factor=2, mode="nearest")[0, 0].numpy()
        np.testing.assert_allclose(g["upsample_nearest"](a), up)


def _figures_module():
    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "scripts" / "docs_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_reference_is_current(tmp_path, monkeypatch):
    mod = _figures_module()
    committed = (DOCS / "reference" / "cli.md").read_text()
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    assert mod.write_cli_reference().read_text() == committed, \
        "docs/reference/cli.md is out of date: run python scripts/docs_figures.py --pages"


def test_gallery_lists_every_method():
    import medseg

    text = (DOCS / "gallery.md").read_text()
    for name in medseg.METHODS.names():
        assert f"\n## {name}\n" in text, f"{name} missing from docs/gallery.md (run scripts/docs_figures.py)"
    assert (DOCS / "img" / "gallery.jpg").exists()


def test_figures_are_small_and_linked():
    for f in (DOCS / "img").iterdir():
        if f.suffix in (".png", ".jpg"):
            assert f.stat().st_size < 400_000, f"{f.name} is too large for the repository"


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs-material not installed (pip install -e '.[docs]')")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env={"NO_MKDOCS_2_WARNING": "1",
                                                                                   **__import__("os").environ})
    assert r.returncode == 0, r.stderr[-3000:]
