#!/usr/bin/env python3
"""Report medseg's internal import graph: cycles, imports against the layer contract, and
imports deferred into functions.

Usage (from the repository root; standard library only)::

    python scripts/import_graph.py            # the summary counts
    python scripts/import_graph.py --verbose  # every cycle, upward edge and deferred import

The layers are read from the ``layers`` contract of ``[tool.importlinter]`` in
``pyproject.toml`` (the one CI enforces), so this report and the CI check never disagree.
An edge is *upward* when a module imports a module of a higher layer, or a sibling package
of the same layer that the contract declares independent. A *deferred* import is one made
inside a function (not at module level, not under ``if TYPE_CHECKING``); each should carry
a ``# deferred: <reason>`` comment naming the heavy optional dependency it defers.
"""
from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PKG = "medseg"


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _visit(node: ast.AST, deferred: bool, ctx: dict, out: list) -> None:
    """Walk ``node`` collecting medseg imports into ``out`` (see :func:`collect`)."""
    mod, is_pkg, modules, lines = ctx["mod"], ctx["is_pkg"], ctx["modules"], ctx["lines"]
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            _visit(child, True, ctx, out)
            continue
        targets: list[str] = []
        if isinstance(child, ast.Import):
            targets = [a.name for a in child.names]
        elif isinstance(child, ast.ImportFrom):
            base = _resolve(mod, is_pkg, child)
            for a in child.names:
                sub = f"{base}.{a.name}"
                targets.append(sub if sub in modules else base)
        seen: set[str] = set()
        for t in targets:
            if t == PKG or t.startswith(PKG + "."):
                while t not in modules and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t != mod and t not in seen:
                    seen.add(t)
                    comment = lines[child.lineno - 1].partition("#")[2].strip()
                    out.append((mod, t, deferred, child.lineno, comment))
        _visit(child, deferred, ctx, out)


def collect(modules: set[str], files: dict[str, Path]) -> list[tuple[str, str, bool, int, str]]:
    """Edges (importer, imported, deferred, line, comment) between medseg modules."""
    edges: list[tuple[str, str, bool, int, str]] = []
    for mod, path in files.items():
        text = path.read_text()
        ctx = {"mod": mod, "is_pkg": path.name == "__init__.py", "modules": modules, "lines": text.splitlines()}
        _visit(ast.parse(text), False, ctx, edges)
    return edges


def cycles(nodes: set[str], edges: list[tuple[str, str, bool, int, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, *_ in edges:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return out


def read_layers() -> tuple[list[list[str]], set[str]]:
    """The ``layers`` contract of pyproject.toml: a list of layers (top first), each a list of
    modules (``a | b`` independent siblings, ``a : b`` siblings that may import each other)."""
    if tomllib is None:
        return [], set()
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text()).get("tool", {}).get("importlinter", {})
    for contract in cfg.get("contracts", []):
        if contract.get("type") == "layers":
            layers: list[list[str]] = []
            independent: set[str] = set()
            for entry in contract["layers"]:
                entry = entry.strip("()")
                if "|" in entry:
                    names = [n.strip() for n in entry.split("|")]
                    independent.update(names)
                else:
                    names = [n.strip() for n in entry.split(":")]
                layers.append([f"{PKG}.{n}" for n in names])
            return layers, {f"{PKG}.{n}" for n in independent}
    return [], set()


def layer_of(mod: str, layers: list[list[str]]) -> tuple[int, str] | None:
    for i, layer in enumerate(layers):
        for name in layer:
            if mod == name or mod.startswith(name + "."):
                return i, name
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", "-v", action="store_true", help="list every finding")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when there is a cycle, an upward import or a deferred import without a reason")
    args = ap.parse_args(argv)
    files = {module_name(p): p for p in sorted((SRC / PKG).rglob("*.py"))}
    modules = set(files)
    edges = collect(modules, files)
    cyc = cycles(modules, edges)
    layers, independent = read_layers()
    upward = []
    for a, b, _, line, _ in edges:
        la, lb = layer_of(a, layers), layer_of(b, layers)
        if la is None or lb is None:
            continue
        if lb[0] < la[0] or (lb[0] == la[0] and la[1] != lb[1] and la[1] in independent):
            upward.append((a, b, line))
    deferred = [e for e in edges if e[2]]
    unexplained = [e for e in deferred if not e[4].lower().startswith("deferred:")]
    print(f"modules                 {len(modules)}")
    print(f"internal imports        {len(edges)}")
    print(f"cycles                  {len(cyc)} ({sum(map(len, cyc))} modules in them)")
    print(f"upward/sideways imports {len(upward)} (against the layers in pyproject.toml)")
    print(f"deferred imports        {len(deferred)} ({len(unexplained)} without a '# deferred:' reason)")
    if args.verbose:
        for c in cyc:
            print("cycle:", " <-> ".join(c))
        for a, b, line in upward:
            print(f"upward: {a}:{line} -> {b}")
        for a, b, _, line, comment in deferred:
            print(f"deferred: {a}:{line} -> {b}" + (f"   # {comment}" if comment else ""))
    if args.check and (cyc or upward or unexplained):
        if not args.verbose:
            for c in cyc:
                print("cycle:", " <-> ".join(c))
            for a, b, line in upward:
                print(f"upward: {a}:{line} -> {b}")
            for a, b, _, line, _ in unexplained:
                print(f"deferred without '# deferred: <reason>': {a}:{line} -> {b}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
