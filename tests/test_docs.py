"""Documentation is code: every docstring example runs, every public name is documented, every
method and every metric shows how it is called."""
from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import medseg
from medseg.methods.base import METHODS

MODULES = sorted(m.name for m in pkgutil.walk_packages(medseg.__path__, "medseg.")
                 if not m.name.endswith("__main__"))


def _public(module):
    """(name, object) of the functions and classes a module defines and exports."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name, None)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
            yield name, obj


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    module = importlib.import_module(name)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run pytest -s to see them)"


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_documented(name):
    module = importlib.import_module(name)
    assert module.__doc__ and module.__doc__.strip(), f"module {name} has no docstring"
    missing = [n for n, obj in _public(module) if not (obj.__doc__ or "").strip()]
    assert not missing, f"{name}: public names without a docstring: {missing}"


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_has_a_runnable_example(method):
    cls = METHODS.get(method)
    assert ">>>" in (cls.__doc__ or ""), f"method '{method}' ({cls.__module__}.{cls.__name__}) has no example"


def test_examples_are_collected_from_every_package():
    """A guard on the test above: the walk finds the packages it should."""
    for pkg in ("medseg.io", "medseg.metrics", "medseg.classical", "medseg.ml", "medseg.train", "medseg.infer"):
        assert any(m.startswith(pkg) for m in MODULES), pkg
