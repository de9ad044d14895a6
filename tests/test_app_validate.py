"""AppTest tests of the Validate page with fake results folders under a temporary data root (nothing trained):
no results yet, a results folder shown (tables, plot, calibrated settings), "Use these settings" moves the sidebar
sliders, a folder outside the data root is refused, a missing file is reported."""
from __future__ import annotations

from pathlib import Path

import pytest

from ecisem_core.ui import validation_view as vv
from streamlit.testing.v1 import AppTest, app_test
from test_app import _NavigationPagesManager  # every AppTest run goes through app.py
from test_validation_view import make_results

from ecisem_core.ui.paths import DATA_ROOT_ENV
from ecisem_core.ui.state import K, widget_key

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


@pytest.fixture(autouse=True)
def _navigation_aware_apptest(monkeypatch):
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root


def open_validate() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["view"] = "validate"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and at.title[0].value == "Validate"
    return at


def show_folder(at: AppTest, text: str) -> AppTest:
    at.text_input(key=K.VAL_FOLDER).set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_no_results_yet_shows_the_bundled_example(root):
    at = open_validate()
    assert any("Choose a results folder" in i.value and "bundled example" in i.value for i in at.info)
    assert len(at.dataframe) == 2 and not at.error          # the study's downstream and agreement tables
    assert any("Seed-to-seed Kendall" in c.value for c in at.caption)
    assert any(b.label == "Start run" for b in at.button)


def test_no_results_and_no_example(root, monkeypatch):
    monkeypatch.setattr(vv, "EXAMPLE_DIR", root / "no-example")
    at = open_validate()
    assert any("Choose a results folder" in i.value for i in at.info)
    assert not at.dataframe and not at.error


def test_results_folder_shown_and_settings_loaded(root):
    make_results(root / "runs" / "val1")
    at = open_validate()
    assert at.selectbox(key=K.VAL_PICK).options == ["(choose)", "runs/val1"]
    at.selectbox(key=K.VAL_PICK).set_value("runs/val1").run()
    assert at.text_input(key=K.VAL_FOLDER).value == "runs/val1"
    assert not at.error, [e.value for e in at.error]
    down, agr = at.dataframe[0].value, at.dataframe[1].value
    assert down["source"].tolist() == ["untrained base", "hybrid", "dense", "bm25", "llm"]
    assert {"nDCG@10", "MRR@10", "Recall@100"} <= set(down.columns)
    assert agr.loc[0, "score"] == "ECI_sem" and agr.loc[0, "Kendall τ"] == "+0.667"
    assert at.get("plotly_chart")
    page = " ".join(m.value for m in at.markdown)
    assert "4 sources × 2 seed(s)" in page and "leave one source out" in page and "+0.667" in page
    assert [m.value for m in at.metric] == ["0.1", "2", "0.5", "0", "3072  (= 8·d)"]

    assert at.slider(key=widget_key("tau")).value == pytest.approx(0.05)
    next(b for b in at.button if b.label == "Use these settings").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key=widget_key("tau")).value == pytest.approx(0.1)
    assert at.slider(key=widget_key("alpha")).value == pytest.approx(2.0)
    assert at.slider(key=widget_key("beta")).value == pytest.approx(0.5)
    assert at.slider(key=widget_key("gamma")).value == pytest.approx(0.0)
    assert at.select_slider(key=widget_key("kappa")).value == 8.0
    assert any("Loaded the calibrated" in s.value for s in at.success)
    assert at.query_params["tau"] in ("0.1", ["0.1"]) and at.query_params["k"] in ("8", ["8"])   # the share link carries them


def test_outside_the_data_root_is_refused(root, tmp_path):
    make_results(tmp_path / "elsewhere")
    at = show_folder(open_validate(), str(tmp_path / "elsewhere"))
    assert any("outside the data root" in e.value for e in at.error)
    assert not at.dataframe
    at = show_folder(at, "../elsewhere")
    assert any("outside the data root" in e.value for e in at.error)


def test_missing_file_reported(root):
    folder = make_results(root / "val")
    (folder / "agreement.csv").unlink()
    at = show_folder(open_validate(), "val")
    assert any("agreement.csv is missing" in e.value for e in at.error)
    assert not at.dataframe


def test_start_run_refuses_eval_outside_root(root):
    at = open_validate()
    at.text_input(key=K.VAL_EVAL).set_value("/etc").run()
    next(b for b in at.button if b.label == "Start run").click().run()
    assert any("outside the data root" in e.value for e in at.error)
    assert not (root / "validation-runs").exists() or not any((root / "validation-runs").iterdir())


def test_start_run_shows_progress_then_results(root, tmp_path, monkeypatch):
    """The page's run flow with a stand-in command (prints progress, then writes a fake results folder into the
    run's --out folder): started in the background, log tail and Stop while it runs, results once it is done."""
    import sys
    import time

    from ecisem_core.ui import validation_view as vv

    src = make_results(tmp_path / "prepared")
    seen = {}

    def fake_command(data, eval_spec, out, **kw):
        seen.update(data=data, eval=eval_spec, **kw)
        code = (f"import shutil, sys, time\nsys.stderr.write('training bm25: 1/2\\n'); sys.stderr.flush()\n"
                f"time.sleep(1.5)\nshutil.copytree({str(src)!r}, {str(out)!r}, dirs_exist_ok=True)\n")
        return [sys.executable, "-c", code]

    monkeypatch.setattr(vv, "build_command", fake_command)
    at = open_validate()
    at.text_input(key=K.VAL_EVAL).set_value("split:0.2")
    at.number_input(key=K.VAL_PER_SOURCE).set_value(16)
    at.text_input(key=K.VAL_SEEDS).set_value("0 1")
    next(b for b in at.button if b.label == "Start run").click().run()
    assert not at.error, [e.value for e in at.error]
    assert seen["eval"] == "split:0.2" and seen["per_source"] == 16 and seen["seeds"] == [0, 1]
    assert [Path(p).name for p in seen["data"]] == ["demo_triplets.jsonl"]
    out = Path(at.session_state[K.VAL_RUN])
    assert out.parent == (root / vv.RUNS_DIR).resolve()
    assert any(b.label == "Stop run" for b in at.button)
    assert any("still going" in i.value for i in at.info)
    run = vv.get_run(out)
    deadline = time.monotonic() + 30
    while run.status() == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "training bm25: 1/2" in at.code[0].value
    assert not any(b.label == "Stop run" for b in at.button)
    assert at.dataframe[0].value["source"].tolist()[0] == "untrained base"
