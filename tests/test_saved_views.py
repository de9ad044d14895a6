"""Saved named views (ui/saved_views.py): the store, and a link ``?sv=<name>`` that opens the page with its
settings, filters and selection."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest, app_test
from test_app import _NavigationPagesManager

from ecisem_core import demo
from ecisem_core.errors import InputError
from ecisem_core.ui import saved_views as sv
from ecisem_core.ui.state import K

ROOT = Path(__file__).resolve().parents[1]


def test_store_saves_refuses_a_taken_name_replaces_when_asked_and_deletes(tmp_path):
    store = sv.ViewStore(tmp_path / "v" / "views.sqlite")
    saved = store.save("  bm25 vs llm ", "compare", {"ca": "preset:paper", "src": ["bm25", "llm"], "sv": "old"})
    assert saved.name == "bm25 vs llm" and saved.params == {"ca": ["preset:paper"], "src": ["bm25", "llm"]}
    assert store.get("bm25 vs llm") == saved
    with pytest.raises(InputError, match="exists already"):
        store.save("bm25 vs llm", "explorer", {"xq": "x"})
    assert store.get("bm25 vs llm").page == "compare"  # nothing overwritten
    store.save("bm25 vs llm", "explorer", {"xq": "x"}, replace=True)
    assert store.get("bm25 vs llm").params == {"xq": ["x"]}
    store.save("second", "", {})
    assert set(store.names()["name"]) == {"bm25 vs llm", "second"}
    assert store.delete("second") and not store.delete("second") and store.get("second") is None


@pytest.mark.parametrize("name, problem", [("", "needs a name"), ("   ", "needs a name"),
                                           ("x" * (sv.NAME_MAX + 1), "at most"), ("a\nb", "control")])
def test_bad_view_names_are_refused_with_the_reason(tmp_path, name, problem):
    with pytest.raises(InputError, match=problem):
        sv.ViewStore(tmp_path / "views.sqlite").save(name, "explorer", {})


def test_a_view_link_names_its_page_and_escapes_the_name():
    view = sv.SavedView("a&b c/é", "explorer", {}, "")
    url = sv.view_link("http://h:8501/", view)
    assert url.startswith("http://h:8501/explorer?") and parse_qs(urlsplit(url).query) == {"sv": ["a&b c/é"]}
    assert sv.view_link("", sv.SavedView("x", "", {}, "")) == "/?sv=x"


@pytest.fixture()
def app(tmp_path_factory, monkeypatch):
    demo.seed_cache(tmp_path_factory.getbasetemp() / "ecisem_cache")
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv("ECISEM_WARM_UMAP", "0")

    def open_app(**params) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.query_params.update(params)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


def test_save_a_view_then_its_link_opens_the_page_with_its_settings_and_filters(app):
    at = app(view="explorer", xq="Venus", xf="no", tau="0.2")
    at.switch_page("views/explorer.py")
    at.run()
    at.text_input(key=K.SV_NAME).input("venus, not flagged")
    at.run()
    next(b for b in at.button if b.label == "Save view").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    saved = sv.ViewStore(sv.views_path()).get("venus, not flagged")
    assert saved is not None and saved.page == "explorer"
    assert saved.params["xq"] == ["Venus"] and saved.params["xf"] == ["no"] and saved.params["tau"] == ["0.2"]
    assert any(c.value.endswith("/explorer?sv=venus%2C+not+flagged") for c in at.code)

    fresh = app(sv="venus, not flagged")  # a new session: the link names nothing but the view
    assert fresh.text_input(key="explorer_search").value == "Venus"
    assert fresh.selectbox(key="explorer_fn").value == "no"
    assert fresh.session_state["tau"] == 0.2
    assert "sv" not in fresh.query_params and fresh.query_params.get("xq") == "Venus"


def test_an_unknown_saved_view_is_said_once(app):
    at = app(sv="nobody saved this")
    notes = [w.value for w in at.sidebar.warning]
    assert len(notes) == 1 and "no saved view named" in notes[0]
