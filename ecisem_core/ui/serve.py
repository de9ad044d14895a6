"""The dashboard server: ``python -m ecisem_core.ui.serve app.py [streamlit options]`` is ``streamlit run app.py
[options]`` with every module the app and its pages import already imported when the first browser connects.

Streamlit runs ``app.py`` only when a browser opens a session, so a fresh server paid for importing the dashboard
(pandas, scipy, plotly, the library: about 0.6 s on the 2-core machine) inside the first page load, on the cores
that the browser was using to load the page. Imported at start-up, the first script run began 0.7 s after the page
was requested instead of 1.3 s, and the first leaderboard at 100k triplets came 0.7–0.9 s sooner
(docs/DASHBOARD.md). ``./run.sh``, the browser tests and the dashboard benchmark start the server this way; plain
``streamlit run app.py`` still works. A module that fails to import is reported and left to fail where
``streamlit run`` would fail too: on its page.
"""
from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

from streamlit.web import cli

from ecisem_core.ui.offline import go_offline
from ecisem_core.ui.registry import available_pages

USAGE = "usage: python -m ecisem_core.ui.serve app.py [streamlit options]"


def imported_modules(script: Path) -> list[str]:
    """The absolute module names a Python file imports at its top level (``import a.b``, ``from a.b import c``;
    ``from a import b`` also names ``a.b``, which may be a module), in order, without repeats; relative imports
    and ``__future__`` are left out."""
    tree = ast.parse(script.read_text(encoding="utf-8"), filename=str(script))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    return list(dict.fromkeys(names))


def preload(app: Path) -> tuple[list[str], list[str]]:
    """Import what ``app`` and its registered pages (:func:`~ecisem_core.ui.registry.available_pages` of
    ``app``'s folder) import at top level. Returns (the modules imported, one line per failure: the file, the
    module and the error); a name that is not a module (``from a import function``) is skipped."""
    done: list[str] = []
    failed: list[str] = []
    for script in [app, *(app.parent / p.file for p in available_pages(app.parent))]:
        for name in imported_modules(script):
            parent, _, leaf = name.rpartition(".")
            if name in sys.modules or (parent in sys.modules and hasattr(sys.modules[parent], leaf)):
                continue  # imported already, or ``from a import b`` where b is a name of a
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 — the page shows it when opened, as under streamlit run
                failed.append(f"{script.name}: {name}: {type(exc).__name__}: {exc}")
            else:
                done.append(name)
    return done, failed


def main(argv: list[str] | None = None) -> None:
    """Set the offline switches, preload ``argv[0]``'s modules (default argv: this process's arguments), then
    ``streamlit run`` with ``argv``. No app file, or one that is not a ``.py`` file: the usage, exit 2."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        sys.exit(_usage("the app's file comes first"))
    app = Path(args[0])
    if app.suffix != ".py":
        sys.exit(_usage(f"{args[0]}: not a Python file"))
    if not app.is_file():
        sys.exit(_usage(f"{args[0]}: no such file"))
    go_offline()
    for line in preload(app.resolve())[1]:
        print(f"ecisem serve: not preloaded: {line}", file=sys.stderr)
    sys.argv = ["streamlit", "run", *args]
    cli.main()


def _usage(problem: str) -> int:
    """Print ``problem`` and :data:`USAGE` to stderr; the exit status of a bad call (2)."""
    print(f"ecisem serve: {problem}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    main()
