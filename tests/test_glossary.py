"""One name per concept (docs/GLOSSARY.md): the retired names do not come back in the pages, the dashboard's
modules or the report."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RETIRED = ["likely FNs", "flagged FN rate", "classic ECI (v1)", "flagged FNs", "Classic ECI (v1)"]
"""Names the glossary retired (its right column)."""
WHERE = [*sorted((ROOT / "views").glob("*.py")), *sorted((ROOT / "ecisem_core" / "ui").glob("*.py")),
         ROOT / "ecisem_core" / "report" / "html.py", ROOT / "ecisem_core" / "report" / "figures.py", ROOT / "app.py"]


def test_retired_names_are_not_used():
    found = []
    for path in WHERE:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in RETIRED:
                if name in line:
                    found.append(f"{path.relative_to(ROOT)}:{i}: {name!r}")
    assert not found, "\n".join(found)


def test_the_glossary_lists_every_retired_name():
    text = (ROOT / "docs" / "GLOSSARY.md").read_text(encoding="utf-8")
    for name in ["likely FNs", "flagged FN rate", "classic ECI (v1)"]:
        assert re.search(re.escape(name), text), name


def test_no_icon_names_inside_page_text():
    """Material icons go in ``icon=`` (rendered as an icon), never inside a text, where a screen reader reads the
    icon's name ("hourglass_top") aloud. Every string constant (f-string parts included, docstrings excluded) that
    holds ``:material/…:`` must be that icon name alone."""
    import ast

    icon = re.compile(r":material/[a-z_]+:")
    found = []
    for path in WHERE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and icon.search(node.value) and not icon.fullmatch(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert not found, "\n".join(found)
