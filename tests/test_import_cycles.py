"""No import cycles between the modules of nasco: every ``import`` / ``from ... import`` of a
nasco module, at module level or inside a function (an import deferred to avoid loading torch
or Ray must still not close a cycle), read with ``ast``. ``TYPE_CHECKING`` blocks are skipped."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> package it installs as (pyproject.toml's package-dir).
PACKAGES = {"nasco": "nasco", "predictors": "nasco.predictors"}


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def import_graph(mods: dict[str, Path]) -> nx.DiGraph:
    def owner(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = nx.DiGraph()
    for mod, path in mods.items():
        graph.add_node(mod)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]

        def visit(node: ast.AST) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:
                        up = package.split(".")[: len(package.split(".")) - child.level + 1]
                        base = ".".join(up + ([base] if base else []))
                    targets = [base] + [f"{base}.{a.name}" for a in child.names]
                for target in targets:
                    dep = owner(target)
                    if dep is not None and dep != mod:
                        graph.add_edge(mod, dep)
                visit(child)

        visit(ast.parse(path.read_text(encoding="utf-8")))
    return graph


def test_the_graph_sees_the_package():
    mods = modules()
    graph = import_graph(mods)
    assert "nasco.run._driver" in mods and "nasco.predictors._zerocost" in mods
    assert graph.has_edge("nasco.run._tune_trial", "nasco.run._ray")  # at module level
    assert graph.has_edge("nasco.predictors._zerocost", "nasco.evaluate._proxies")  # inside a function


def test_no_import_cycles():
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph(modules())) if len(c) > 1]
    assert cycles == []
