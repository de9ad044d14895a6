"""``ecisem_core.ui.serve``: the dashboard server that imports the app's modules before the first page load."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ecisem_core.ui import serve
from ecisem_core.ui.offline import OFFLINE

ROOT = Path(__file__).resolve().parents[1]


def test_imported_modules_lists_top_level_imports_in_order(tmp_path):
    script = tmp_path / "page.py"
    script.write_text(textwrap.dedent("""
        from __future__ import annotations
        import os, json as j
        import xml.dom
        from collections import abc, OrderedDict
        from .relative import thing
        from string import *
        import os

        def late():
            import csv  # inside a function: not imported at start-up
    """), encoding="utf-8")
    assert serve.imported_modules(script) == [
        "os", "json", "xml.dom", "collections", "collections.abc", "collections.OrderedDict", "string"]


def test_preload_imports_what_the_app_and_its_pages_import(tmp_path):
    """In a fresh interpreter started elsewhere: nothing of the dashboard before, the app's and every page's
    modules after, and no failure."""
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from ecisem_core.ui import serve
        watched = ["ecisem_core.ui.layout", "ecisem_core.ui.sidebar", "ecisem_core.ui.curate",
                   "ecisem_core.report.figures"]
        before = [m for m in watched if m in sys.modules]
        done, failed = serve.preload(Path({str(ROOT / "app.py")!r}))
        print(before, [m for m in watched if m not in sys.modules], "ecisem_core.ui.sidebar" in done, failed)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "[]", "True", "[]"]


def test_preload_reports_a_module_that_fails_and_goes_on(tmp_path, monkeypatch):
    (tmp_path / "app.py").write_text("import ecisem_no_such_module\n", encoding="utf-8")
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "extra.py").write_text("import ecisem_serve_probe\n", encoding="utf-8")
    (tmp_path / "ecisem_serve_probe.py").write_text("VALUE = 1\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "ecisem_serve_probe", raising=False)
    done, failed = serve.preload(tmp_path / "app.py")
    assert done == ["ecisem_serve_probe"]  # the page's import, past the app's failure
    assert len(failed) == 1 and failed[0].startswith("app.py: ecisem_no_such_module: ModuleNotFoundError")


def test_main_preloads_then_hands_the_arguments_to_streamlit_run(tmp_path, monkeypatch):
    app = tmp_path / "app.py"
    app.write_text("import json\n", encoding="utf-8")
    calls = []
    monkeypatch.setattr(serve, "preload", lambda path: calls.append(("preload", path)) or ([], []))
    monkeypatch.setattr(serve.cli, "main", lambda: calls.append(("run", list(sys.argv))))
    monkeypatch.setattr(sys, "argv", ["serve"])
    for key in OFFLINE:
        monkeypatch.delenv(key, raising=False)
    serve.main([str(app), "--server.port", "8599"])
    assert calls == [("preload", app.resolve()), ("run", ["streamlit", "run", str(app), "--server.port", "8599"])]
    assert all(os.environ[k] == v for k, v in OFFLINE.items())


@pytest.mark.parametrize("argv, problem", [
    (["--server.port", "8501"], "the app's file comes first"),
    ([], "the app's file comes first"),
    (["missing.py"], "missing.py: no such file"),
    (["notes.txt"], "notes.txt: not a Python file"),
])
def test_a_bad_call_says_how_to_call_it_and_exits_2(argv, problem, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    monkeypatch.setattr(serve.cli, "main", lambda: pytest.fail("streamlit must not start"))
    with pytest.raises(SystemExit) as exc:
        serve.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert problem in err and "usage: python -m ecisem_core.ui.serve app.py" in err
