"""The structure checks CI holds: the layer contract (import-linter), no import cycles and no
unexplained deferred imports (scripts/import_graph.py), the lint rules (ruff) and the types of
the public API (mypy). Each runs the same command a developer runs by hand."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: run `bash scripts/setup.sh` (it installs the test extra)")
        return found
    return str(exe)


def test_layers_hold():
    """`lint-imports`: each layer imports only the layers below it (pyproject.toml)."""
    r = _run(_tool("lint-imports"), "--no-cache")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_no_cycles_and_deferred_imports_have_reasons():
    """`python scripts/import_graph.py --check`."""
    r = _run(sys.executable, "scripts/import_graph.py", "--check")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff():
    r = _run(_tool("ruff"), "check", "--no-cache", "src", "tests", "benchmarks", "scripts")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy_public_api():
    """`mypy` on the files listed in pyproject.toml's [tool.mypy]."""
    r = _run(_tool("mypy"), "--no-incremental")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
