"""The dashboard server: ``python -m ecisem_core.ui.serve app.py [streamlit options]`` is ``streamlit run app.py
[options]`` with every module the app and its pages import already imported when the first browser connects.

Streamlit runs ``app.py`` only when a browser opens a session, so a fresh server paid for importing the dashboard
(pandas, scipy, plotly, the library: about 0.6 s on the 2-core machine) inside the first page load, on the cores
that the browser was using to load the page. Imported at start-up, the first script run began 0.7 s after the page
was requested instead of 1.3 s, and the first leaderboard at 100k triplets came 0.7 s sooner (docs/DASHBOARD.md).
``./run.sh`` and the browser tests start the server this way; plain ``streamlit run app.py`` still works.
"""
from __future__ import annotations

import ast
import importlib
import os
import sys
from pathlib import Path

from streamlit.web import cli

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""Set (unless already set) before anything is imported, as ``app.py`` does: nothing is downloaded at run time."""


def imported_modules(script: Path) -> list[str]:
    """The absolute module names a Python file imports at its top level (``import a.b``, ``from a.b import c``;
    ``from a import b`` also names ``a.b``, which may be a module), in order, without repeats."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    return list(dict.fromkeys(names))


def preload(app: Path) -> list[str]:
    """Import what ``app`` and the page files of ``app``'s folder (``views/*.py``) import; the names imported.
    A name that is not a module (``from a import function``) is skipped; any other import error is raised, as
    the app would raise it."""
    done = []
    for script in [app, *sorted((app.parent / "views").glob("*.py"))]:
        for name in imported_modules(script):
            if name in sys.modules:
                continue
            parent, _, leaf = name.rpartition(".")
            if parent in sys.modules and hasattr(sys.modules[parent], leaf):
                continue  # from a import b, where b is a name of a (a function, or a module imported already)
            importlib.import_module(name)
            done.append(name)
    return done


def main(argv: list[str] | None = None) -> None:
    """``streamlit run`` with ``argv`` (default: this process's arguments; the first is the app's file)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        print("usage: python -m ecisem_core.ui.serve app.py [streamlit options]", file=sys.stderr)
        sys.exit(2)
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    preload(Path(args[0]).resolve())
    sys.argv = ["streamlit", "run", *args]
    cli.main()


if __name__ == "__main__":
    main()
