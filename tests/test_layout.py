"""The package layout: folders follow the flow, dependencies point down, no import cycles."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "kaayko_exp"

# What each part may import (besides the root helpers config, errors, atomic). Listed from the
# architecture: entry plumbing -> training / serving / runs -> evaluation -> models / features -> data.
ALLOWED = {
    "data": set(),
    "features": {"data"},
    "models": {"data", "features"},
    "evaluation": {"data", "features", "models", "runs"},
    "runs": {"data"},
    "serving": {"data", "features", "models", "runs"},
    # backend=dask: the same stages on a Dask cluster (data on the workers, xgboost.dask, per-partition scoring)
    "cluster": {"data", "features", "models", "evaluation", "runs", "serving"},
    # a saved run as an MLflow model (wraps the serving Predictor)
    "export": {"data", "features", "models", "runs", "serving"},
    # mirrors of runs and sweeps in an experiment tracker (MLflow); never a dependency of training
    "tracking": {"data", "evaluation", "runs", "export"},
    "training": {"data", "features", "models", "evaluation", "runs", "serving", "cluster", "tracking"},
    "compare": {"data", "evaluation", "runs"},
    "cli": {"training", "runs", "tracking"},
}
ROOT_HELPERS = {"config", "errors", "atomic"}


def _part(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("").parts
    return rel[0]


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PKG.rglob("*.py"):
        src = _part(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            names = node.module.split(".")
            if names[0] != "kaayko_exp":
                continue
            targets = [names[1]] if len(names) > 1 else [a.name for a in node.names]
            graph[src].update(t for t in targets if t != src and ((PKG / t).is_dir() or (PKG / f"{t}.py").exists()))
    return graph


def test_every_part_imports_only_what_lies_below_it():
    wrong = {src: sorted(dst - ALLOWED[src] - ROOT_HELPERS) for src, dst in _imports().items() if src in ALLOWED}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_root_helpers_import_no_part_of_the_package():
    graph = _imports()
    assert {h: sorted(graph.get(h, set()) - ROOT_HELPERS) for h in ROOT_HELPERS} == {h: [] for h in ROOT_HELPERS}


def test_there_is_no_import_cycle_between_parts():
    graph = _imports()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return seen

    assert [part for part in graph if part in reachable(part)] == []


def test_folders_show_the_flow():
    parts = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"data", "features", "models", "training", "evaluation", "serving", "runs"} <= parts
    flat = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")
    assert flat == ["atomic", "cli", "config", "errors"]
