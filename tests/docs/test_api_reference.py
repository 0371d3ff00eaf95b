"""The Python API reference covers the public API, and every cross-reference in a docstring resolves.

* every public module is on one of the pages under ``docs/reference/api/`` (its own ``:::``
  directive, or its whole ``__all__`` re-exported by a documented package: then its names are
  documented under the package);
* every public name (a module's ``__all__``) is rendered on one of them: the built site has an
  anchor for it, on the module that defines it or on one that re-exports the same object;
* every public constant has an attribute docstring (a string right after the assignment):
  mkdocstrings leaves out objects without a docstring unless a ``members:`` list names them,
  and then shows a bare heading; it does not read Sphinx's ``#:`` comments;
* every Markdown cross-reference in a docstring (``[`Image`][medseg.image.Image]``,
  ``[`medseg.io`][]``) names an object in the site's inventory, also where the docstring is
  not rendered today.

Public: no path component starting with ``_``. The ``medseg.cli`` command modules (no
``__all__``) are documented by the generated CLI reference, docs/reference/cli.md.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import medseg

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "reference" / "api"
DIRECTIVE = re.compile(r"^::: ([\w.]+)[ \t]*\n((?:[ \t]+\S.*\n?)*)", re.M)
XREF = re.compile(r"\[`([^`\]]+)`\]\[([\w.]*)\]")

# Names griffe (mkdocstrings' reader) cannot document: it skips tuple-unpacking assignments
# (``A, B = 1, 2``); write one assignment per name, each with its docstring, instead. None today.
UNDOCUMENTABLE: set[tuple[str, str]] = set()


def public_modules() -> list[str]:
    names = ["medseg"] + [m.name for m in pkgutil.walk_packages(medseg.__path__, "medseg.")]
    out = []
    for name in names:
        if any(part.startswith("_") for part in name.split(".")):
            continue
        if name.startswith("medseg.cli") and not hasattr(importlib.import_module(name), "__all__"):
            continue  # a command: docs/reference/cli.md
        out.append(name)
    return sorted(out)


def exported(name: str) -> list[str]:
    """The public names of module ``name``: its ``__all__``, else the classes and functions it defines."""
    module = importlib.import_module(name)
    if hasattr(module, "__all__"):
        return [n for n in module.__all__ if not (n.startswith("__") and n.endswith("__"))]
    return [n for n, obj in vars(module).items() if not n.startswith("_") and callable(obj)
            and getattr(obj, "__module__", None) == name]


def directives() -> dict[str, list[str] | None]:
    """``{module: its members: list, or None for all}`` of every ``:::`` on the API pages."""
    out: dict[str, list[str] | None] = {}
    for page in sorted(API.glob("*.md")):
        for m in DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            members = re.search(r"^\s*members:\s*\[(.*?)\]", m.group(2), re.M)
            out[m.group(1)] = [x.strip() for x in members.group(1).split(",") if x.strip()] if members else None
    return out


def test_directives_are_parsed():
    """A guard on the tests below: the pages are read, with their members lists."""
    d = directives()
    assert len(d) > 50 and d["medseg.image"] is None
    assert "Format" in d["medseg.io.base"] and "segment" in d["medseg"]


def test_every_public_module_is_on_a_page():
    d = directives()
    missing = []
    for name in public_modules():
        if name in d:
            continue
        parents = [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]
        shown = {n for p in parents if p in d for n in exported(p)}
        if not set(exported(name)) <= shown:
            missing.append(f"{name} (not re-exported: {sorted(set(exported(name)) - shown)})")
    assert not missing, ("public modules on no API page; add a '::: module' directive to a page under "
                         "docs/reference/api/:\n  " + "\n  ".join(missing))


def _attribute_docstrings(module: str) -> dict[str, bool]:
    """``{name: has a docstring}`` of the module-level assignments in ``module``'s source."""
    spec = importlib.util.find_spec(module)
    body = ast.parse(Path(spec.origin).read_text(encoding="utf-8")).body
    out: dict[str, bool] = {}
    for node, nxt in zip(body, body[1:] + [None]):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        documented = (isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                      and isinstance(nxt.value.value, str))
        for t in targets:
            if isinstance(t, ast.Name):
                out[t.id] = documented
    return out


def test_every_public_constant_has_a_docstring():
    """mkdocstrings shows a constant without a docstring as a bare heading (or not at all); ``#:``
    comments are Sphinx's convention and are not read."""
    modules = public_modules()
    docs = {m: _attribute_docstrings(m) for m in modules}
    missing = []
    for module in modules:
        for name in exported(module):
            obj = getattr(importlib.import_module(module), name)
            if (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)
                    or (module, name) in UNDOCUMENTABLE):
                continue
            homes = [m for m in modules if name in docs[m] and getattr(importlib.import_module(m), name, None) is obj]
            if not any(docs[m][name] for m in homes):
                missing.append(f"{module}.{name}" + ("" if homes else " (no module assigns it by name)"))
    assert not missing, ("public constants without an attribute docstring (a string literal right after the "
                         "assignment):\n  " + "\n  ".join(sorted(set(missing))))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None:
        pytest.skip("mkdocs/mkdocstrings not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _resolve(path: str):
    """The object at dotted ``path`` (a module, or an attribute of one); ``None`` if there is none."""
    parts = path.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def test_every_public_name_is_rendered(site):
    anchors: dict[str, list[str]] = {}  # name -> the paths it is rendered under
    for page in (site / "reference" / "api").rglob("*.html"):
        for anchor in re.findall(r'id="(medseg\.[\w.]+)"', page.read_text(encoding="utf-8")):
            parent, _, name = anchor.rpartition(".")
            anchors.setdefault(name, []).append(parent)
    missing = []
    for module in public_modules():
        for name in exported(module):
            if (module, name) in UNDOCUMENTABLE:
                continue
            obj = getattr(importlib.import_module(module), name)
            if not any(getattr(_resolve(parent), name, None) is obj for parent in anchors.get(name, [])):
                missing.append(f"{module}.{name}")
    assert not missing, ("public names on no API page. Give each a docstring (constants: a string literal "
                         "right after the assignment) and make sure a '::: module' directive under "
                         "docs/reference/api/ shows it (add it to the directive's members: list if it has "
                         "one):\n  " + "\n  ".join(missing))


def test_docstring_cross_references_resolve(site):
    raw = (site / "objects.inv").read_bytes()
    inventory = {line.split(" ", 1)[0] for line in zlib.decompress(raw.split(b"\n", 4)[4]).decode().splitlines()}
    assert "medseg.image.Image" in inventory
    bad = []
    for path in sorted((ROOT / "src" / "medseg").rglob("*.py")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for text, target in XREF.findall(line):
                if (target or text) not in inventory:
                    bad.append(f"{path.relative_to(ROOT)}:{i}: [`{text}`][{target}]")
    assert not bad, ("cross-references to objects the API pages do not document (write plain `name`, or "
                     "document the target):\n  " + "\n  ".join(bad))
