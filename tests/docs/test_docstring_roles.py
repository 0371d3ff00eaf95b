"""No Sphinx roles in medseg's docstrings.

The API reference is rendered from the docstrings by mkdocstrings as Markdown, where a Sphinx
role such as ``:func:`segment``` is shown literally, colons and all. Docstrings name objects as
plain code (`` `segment` ``) or as Markdown cross-references that mkdocstrings resolves
(``[`Image`][medseg.image.Image]``, or ``[`medseg.io.load_dataset`][]`` when the text is the
path). This checks every docstring under ``src/medseg`` (modules, classes, functions, methods
and attribute docstrings) and the ``#:`` documentation comments.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "medseg"
FILES = sorted(SRC.rglob("*.py"))

#: ``:role:`target``` and ``:domain:role:`target``` (e.g. ``:py:func:``), the Sphinx syntax
ROLE = re.compile(r"(?<![\w`:]):(?:[a-z]+:)?[a-z]+:`[^`\n]+`")


def doc_texts(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every docstring and ``#:`` comment in ``source``."""
    out: list[tuple[int, str]] = []

    def string_stmt(node: ast.AST) -> bool:
        return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str))

    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and string_stmt(body[0]):
            out.append((body[0].lineno, body[0].value.value))
        for prev, cur in zip(body, body[1:]):  # attribute docstrings
            if isinstance(prev, (ast.Assign, ast.AnnAssign)) and string_stmt(cur):
                out.append((cur.lineno, cur.value.value))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.string.startswith("#:"):
            out.append((tok.start[0], tok.string))
    return out


def roles_in(source: str) -> list[tuple[int, str]]:
    """``(line, role)`` of every Sphinx role in the docstrings and ``#:`` comments of ``source``."""
    return [(line + text[:m.start()].count("\n"), m.group(0))
            for line, text in doc_texts(source) for m in ROLE.finditer(text)]


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_sphinx_roles_in_docstrings(path):
    found = roles_in(path.read_text(encoding="utf-8"))
    where = "\n".join(f"  {path.relative_to(SRC.parent)}:{line}: {role}" for line, role in found)
    assert not found, (f"Sphinx roles render literally on the mkdocstrings API pages; write `name` or "
                       f"[`name`][medseg.module.name] instead:\n{where}")


def test_the_check_finds_roles():
    """A guard on the test above: it sees roles in every kind of docstring, and only roles."""
    source = '''"""Module: see :func:`medseg.segment`."""
X = 1
"""Attribute: :data:`X`."""
#: comment: :py:class:`~medseg.image.Image`
class C:
    """Class :class:`C`."""
    def f(self):
        """Method.

        Returns :attr:`C.x` or :meth:`C.f` (:mod:`medseg`, :exc:`ValueError`)."""
        s = ":func:`not_a_docstring`"
        return s
'''
    assert sorted(roles_in(source)) == [
        (1, ":func:`medseg.segment`"), (3, ":data:`X`"), (4, ":py:class:`~medseg.image.Image`"),
        (6, ":class:`C`"), (10, ":attr:`C.x`"), (10, ":exc:`ValueError`"), (10, ":meth:`C.f`"),
        (10, ":mod:`medseg`")]
    clean = '"""Plain `segment`, [`Image`][medseg.image.Image], [`medseg.io`][], ``a:b`` and `x:y`."""\n'
    assert roles_in(clean) == []
