"""``ecisem_core.ui.serve``: the dashboard server that imports the app's modules before the first page load."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ecisem_core.ui import serve

ROOT = Path(__file__).resolve().parents[1]


def test_imported_modules_lists_top_level_imports_in_order(tmp_path):
    script = tmp_path / "page.py"
    script.write_text(textwrap.dedent("""
        from __future__ import annotations
        import os, json as j
        import xml.dom
        from collections import abc, OrderedDict
        from .relative import thing
        from os import *
        import os

        def late():
            import csv  # inside a function: not imported at start-up
    """), encoding="utf-8")
    assert serve.imported_modules(script) == [
        "os", "json", "xml.dom", "collections", "collections.abc", "collections.OrderedDict"]


def test_preload_imports_what_the_app_and_its_pages_import():
    """In a fresh interpreter: nothing of the dashboard before, the app's and every page's modules after."""
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from ecisem_core.ui import serve
        watched = ["ecisem_core.ui.layout", "ecisem_core.ui.sidebar", "ecisem_core.ui.curate", "ecisem_core.report.figures"]
        before = [m for m in watched if m in sys.modules]
        done = serve.preload(Path("app.py").resolve())
        print(before, [m for m in watched if m not in sys.modules], "ecisem_core.ui.registry" in done)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "[]", "True"]


def test_preload_raises_an_import_error_of_the_app(tmp_path):
    (tmp_path / "app.py").write_text("import ecisem_no_such_module\n", encoding="utf-8")
    with pytest.raises(ModuleNotFoundError, match="ecisem_no_such_module"):
        serve.preload(tmp_path / "app.py")


def test_main_without_the_app_file_says_how_to_call_it(capsys):
    with pytest.raises(SystemExit) as exc:
        serve.main(["--server.port", "8501"])
    assert exc.value.code == 2
    assert "usage: python -m ecisem_core.ui.serve app.py" in capsys.readouterr().err
