"""The import graph of droplab: no cycle anywhere, analyses side by side (issue 12).

Every ``import`` / ``from … import`` statement of every module under ``src/droplab`` is read with
``ast`` (including imports inside functions and ``TYPE_CHECKING`` blocks: a hidden import is still
a dependency). An import of ``a.b.c`` from outside package ``a.b`` also runs ``a/b/__init__.py``,
so it counts as an edge to that package too. Inside a package, ``from P import sub`` of its own
submodules and a plain ``import P`` do not (P's ``__init__`` is already running).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "droplab"
ANALYSES = ("ensemble", "regularization", "landscape", "noise_structure", "dynamics", "information")

#: Analysis → analysis imports that are allowed, each with its reason. Anything else is a failure:
#: analyses import the floors below them (``_checks``, ``_params``, ``nn``, ``models``, ``training``).
ALLOWED = {
    ("dynamics", "regularization"): "SPS Theorem 1's flow drifts along −½P_Γ∇Δ_η L̂: dynamics uses the noise "
                                    "Laplacian, the regularization package's result",
    ("noise_structure", "regularization"): "exact_dropout_moments (ZZX App. B.2) takes its expectation over the "
                                           "Bernoulli mask support that regularization enumerates for B&S eq. 139",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """``(target module, imported names, line)`` for every import statement of module ``name``."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):  # ``import P`` inside P reads no name of P at import time: no edge
            out += [(alias.name, [], node.lineno) for alias in node.names if not name.startswith(alias.name + ".")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            if len(submodules) < len(names) or not (name + ".").startswith(base + "."):
                out.append((base, names, node.lineno))  # a package's own submodules alone do not run its __init__ again
            out += [(m, [], node.lineno) for m in submodules]
    return [(t, n, line) for t, n, line in out if t == "droplab" or t.startswith("droplab.")]


def edges(name: str) -> set[str]:
    """Modules that importing ``name`` runs: each target and its packages outside ``name``'s own."""
    out = set()
    for target, _, _ in imports(name):
        parts = target.split(".")
        for k in range(2, len(parts) + 1):
            prefix = ".".join(parts[:k])
            if prefix in MODULES and (k == len(parts) or not name.startswith(prefix + ".") and name != prefix):
                out.add(prefix)
    out.discard(name)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between packages ``droplab.X`` (the first level), without self-loops."""
    def top(m: str) -> str:
        return ".".join(m.split(".")[:2])

    out: dict[str, set[str]] = {top(m): set() for m in graph}
    for m, targets in graph.items():
        out[top(m)] |= {top(t) for t in targets if top(t) != top(m)}
    return out


GRAPH = {name: edges(name) for name in MODULES}


def test_the_graph_is_read():
    assert len(MODULES) > 50
    assert "droplab.landscape.hessian" in GRAPH["droplab.landscape"]
    assert "droplab._params" in GRAPH["droplab.landscape.hessian"]


def test_no_import_cycle_between_modules():
    assert cycles(GRAPH) == []


def test_no_import_cycle_between_packages():
    assert cycles(package_edges(GRAPH)) == []


def test_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(planted) == [["a", "b", "c"]]


@pytest.mark.parametrize("analysis", ANALYSES)
def test_analyses_import_other_analyses_only_where_allowed_and_never_private_names(analysis):
    prefix = f"droplab.{analysis}"
    bad = []
    for name in (m for m in MODULES if m == prefix or m.startswith(prefix + ".")):
        for target, names, line in imports(name):
            other = target.split(".")[1] if target.count(".") >= 1 else ""
            if other not in ANALYSES or other == analysis:
                continue
            where = f"{MODULES[name].relative_to(ROOT.parent)}:{line} imports {target}"
            private = [n for n in names if n.startswith("_")] + [p for p in target.split(".") if p.startswith("_")]
            if private:
                bad.append(f"{where} private {private}")
            if (analysis, other) not in ALLOWED:
                bad.append(f"{where}: analysis {analysis} may not import analysis {other} (add a reason to ALLOWED "
                           "only where it uses the other's result)")
    assert bad == []


FOUNDATIONS = ("droplab._checks", "droplab._io", "droplab._params", "droplab._hooks")


@pytest.mark.parametrize("foundation", FOUNDATIONS)
def test_foundations_import_only_other_foundations(foundation):
    """The floor under ``nn``: a foundation that imported ``nn`` (or anything above) would stack the floors."""
    above = sorted(t for t in GRAPH[foundation] if t != "droplab" and t not in FOUNDATIONS)
    assert above == [], f"{foundation} imports {above}"
