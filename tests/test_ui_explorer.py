"""The Triplet explorer: its pure module (search, each filter, (text, source) points, nearest neighbours, the card)
and the page through AppTest on the demo."""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest, app_test
from test_app import _NavigationPagesManager  # the dashboard tests' fix: every AppTest run goes through app.py

from ecisem_core.report import figures
from ecisem_core.ui import explorer as ex
from ecisem_core.ui.data import DEMO_PATH
from ecisem_core.ui.projections import WARM_UP_ENV


def tiny() -> pd.DataFrame:
    """Five triplets over texts 0..6: negative text 4 is mined by bm25 (twice, two queries) and llm; text 5 by
    llm only; text 6 by dense only."""
    scored = pd.DataFrame({
        "query_id": ["q1", "q1", "q2", "q2", "q1"],
        "negative_id": ["n4", "n4", "n4", "n5", "n6"],
        "source": ["bm25", "llm", "bm25", "llm", "dense"],
        "s_qp": [0.8, 0.8, 0.7, 0.7, 0.8], "s_qn": [0.5, 0.5, 0.75, 0.2, -0.1], "s_pn": [0.4, 0.4, 0.9, 0.1, 0.0],
        "c": [0.9, 0.9, 0.2, 1.0, 1.0], "h": [0.5, 0.5, 0.9, 0.1, 0.0], "rho": [0.3, 0.3, 0.6, 0.8, 1.0],
        "w": [0.2, 0.2, 0.1, 0.05, 0.0], "fn_score": [0.1, 0.1, 0.9, 0.0, 0.0],
        "fn_reasons": ["", "", "combined evidence (fn_score 0.90; s_pn 0.90); identical to the positive", "", ""],
        "fn_flag": [False, False, True, False, False], "junk_flag": [False, False, False, False, True],
        "query": ["Where is Paris?", "Where is Paris?", "Capital of Peru", "Capital of Peru", "Where is Paris?"],
        "positive": ["Paris is in France.", "Paris is in France.", "Lima is the capital.", "Lima is the capital.",
                     "Paris is in France."],
        "negative": ["Lyon <b>is</b> in France.", "Lyon <b>is</b> in France.", "Lyon <b>is</b> in France.",
                     "Cusco is old.", "random words"],
    })
    qi = np.array([0, 0, 1, 1, 0])
    pi = np.array([2, 2, 3, 3, 2])
    ni = np.array([4, 4, 4, 5, 6])
    return ex.explorer_table(scored, qi, pi, ni)


def test_table_points_and_shared_by_count():
    t = tiny()
    # (text, source) occurrences: (4, bm25) ×2 rows, (4, llm), (5, llm), (6, dense) → 4 points
    assert t["point"].nunique() == 4
    assert t["point"].iloc[0] == t["point"].iloc[2] != t["point"].iloc[1]
    assert t["shared_by"].tolist() == [2, 2, 2, 1, 1]
    layout = pd.DataFrame({"text_index": [4, 5, 4], "x": [1.0, 2.0, 1.0], "y": [3.0, 4.0, 3.0]})
    pts = ex.map_points(t, layout)
    assert len(pts) == 4 and pts["pid"].tolist() == [0, 1, 2, 3]
    by = pts.set_index(["ni", "source"])
    assert by.loc[(4, "bm25"), "n_triplets"] == 2 and by.loc[(4, "llm"), "n_triplets"] == 1
    assert by.loc[(4, "bm25"), "shared_by"] == 2 and by.loc[(5, "llm"), "shared_by"] == 1
    a, b = (by.loc[(4, s), ["x", "y"]].to_numpy(dtype=float) for s in ("bm25", "llm"))
    assert not np.allclose(a, b)  # a shared text: one point per source on a small ring around its place
    assert np.allclose(np.hypot(*(a - [1.0, 3.0])), ex.RING) and np.allclose(np.hypot(*(b - [1.0, 3.0])), ex.RING)
    assert by.loc[(5, "llm"), ["x", "y"]].tolist() == [2.0, 4.0]  # not shared: exactly at its place
    assert not by.loc[(6, "dense"), "on_map"] and np.isnan(by.loc[(6, "dense"), "x"])  # not in the layout
    assert "&lt;b&gt;is&lt;/b&gt;" in by.loc[(4, "bm25"), "label"]  # hover text escaped


def test_search_is_case_insensitive_over_all_three_texts():
    t = tiny()
    assert ex.search_mask(t, "paris").tolist() == [True, True, False, False, True]   # query and positive
    assert ex.search_mask(t, "LIMA").tolist() == [False, False, True, True, False]   # positive only
    assert ex.search_mask(t, "cusco").tolist() == [False, False, False, True, False]  # negative only
    assert ex.search_mask(t, "  ").all() and not ex.search_mask(t, "nowhere").any()
    assert ex.search_mask(t, "<b>").sum() == 3  # a literal, not a regex
    plain = t.assign(**{c: t[c].astype(str) for c in ex.TEXTS})  # non-categorical columns give the same answer
    assert ex.search_mask(plain, "paris").tolist() == ex.search_mask(t, "paris").tolist()


@pytest.mark.parametrize("spec, rows", [
    (ex.FilterSpec(), [0, 1, 2, 3, 4]),
    (ex.FilterSpec(search="peru"), [2, 3]),
    (ex.FilterSpec(sources=("llm", "dense")), [1, 3, 4]),
    (ex.FilterSpec(fn_flag=True), [2]),
    (ex.FilterSpec(fn_flag=False), [0, 1, 3, 4]),
    (ex.FilterSpec(junk_flag=True), [4]),
    (ex.FilterSpec(junk_flag=False), [0, 1, 2, 3]),
    (ex.FilterSpec(ranges=(("s_qp", 0.75, 1.0),)), [0, 1, 4]),
    (ex.FilterSpec(ranges=(("s_qn", -1.0, 0.0),)), [4]),
    (ex.FilterSpec(ranges=(("s_pn", 0.5, 1.0),)), [2]),
    (ex.FilterSpec(ranges=(("c", 0.95, 1.0),)), [3, 4]),
    (ex.FilterSpec(ranges=(("h", 0.5, 0.5),)), [0, 1]),  # both ends included
    (ex.FilterSpec(ranges=(("rho", 0.7, 1.0),)), [3, 4]),
    (ex.FilterSpec(ranges=(("w", 0.1, 0.2),)), [0, 1, 2]),
    (ex.FilterSpec(ranges=(("fn_score", 0.5, 1.0),)), [2]),
    (ex.FilterSpec(points=(0,)), [0, 2]),  # a map point stands for every triplet of its (text, source)
    (ex.FilterSpec(points=()), []),
    (ex.FilterSpec(search="paris", sources=("bm25", "llm"), ranges=(("c", 0.5, 1.0),)), [0, 1]),
])
def test_each_filter(spec, rows):
    assert ex.filter_triplets(tiny(), spec).index.tolist() == rows


def test_verdict_states_from_the_consensus_and_the_verdict_filter():
    t = tiny()
    verdicts = pd.DataFrame({  # (q1, n4): 2 FN vs 1 TN → false negative; (q2, n5): a tie → undecided;
        "item_id": [1, 1, 1, 2, 2, 3], "query_id": ["q1", "q1", "q1", "q2", "q2", "q1"],
        "negative_id": ["n4", "n4", "n4", "n5", "n5", "n6"],   # (q1, n6): one TN → true negative
        "annotator": ["a", "b", "c", "a", "b", "a"],
        "verdict": ["false_negative", "false_negative", "true_negative", "false_negative", "true_negative",
                    "true_negative"]})
    states = ex.verdict_states(t, verdicts)
    assert states.tolist() == ["false negative", "false negative", "not judged", "undecided", "true negative"]
    assert ex.verdict_states(t, verdicts.iloc[0:0]).tolist() == ["not judged"] * 5
    judged = t.assign(verdict=states)
    assert ex.filter_triplets(judged, ex.FilterSpec(verdict="false negative")).index.tolist() == [0, 1]
    assert ex.filter_triplets(judged, ex.FilterSpec(verdict="not judged")).index.tolist() == [2]
    assert ex.filter_triplets(t, ex.FilterSpec(verdict="not judged")).index.tolist() == [0, 1, 2, 3, 4]
    params = ex.filters_to_params("", None, "any", "any", verdict="undecided")
    assert params == {"xv": "undecided"}
    assert ex.filters_from_params({"xv": ["undecided"]}, []) == {"verdict": "undecided"}
    assert ex.filters_from_params({"xv": ["maybe"]}, []) == {}


def test_range_filters_only_keep_narrowed_sliders():
    t = tiny()
    bounds = ex.slider_bounds(t)
    assert bounds["s_qn"] == (-1.0, 1.0) and bounds["fn_score"] == (0.0, 1.0)
    values = {c: bounds[c] for c in ex.TERMS} | {"w": (0.1, 1.0)}
    assert ex.range_filters(values, bounds) == (("w", 0.1, 1.0),)
    assert ex.slider_bounds(t.assign(w=[0.0, 0.0, 0.0, 0.0, 1.234]))["w"] == (0.0, 1.24)  # widened to the data


def test_sample_points_caps_seeded_and_keeps_the_highlight():
    pts = pd.DataFrame({"pid": np.arange(100), "on_map": np.arange(100) % 10 != 0})  # 90 drawable
    a = ex.sample_points(pts, None, 20, seed=1)
    assert len(a) == 20 and a["on_map"].all() and a.index.is_monotonic_increasing
    assert a.index.tolist() == ex.sample_points(pts, None, 20, seed=1).index.tolist()
    assert a.index.tolist() != ex.sample_points(pts, None, 20, seed=2).index.tolist()
    keep = next(i for i in range(1, 100) if i % 10 and i not in set(a.index))
    b = ex.sample_points(pts, None, 20, seed=1, keep=keep)
    assert len(b) == 20 and keep in set(b.index)
    assert ex.sample_points(pts, np.array([0, 1, 2]), 20).index.tolist() == [1, 2]  # visible ∩ drawable


def test_nearest_neighbours_on_a_tiny_matrix():
    m = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.7, 0.7]], dtype=np.float32)
    idx, cos = ex.nearest(m, 0, k=3)
    assert idx.tolist() == [1, 4, 2]
    assert np.allclose(cos, [0.9 / np.hypot(0.9, 0.1), 0.7 / np.hypot(0.7, 0.7), 0.0], atol=1e-6)
    assert 0 not in ex.nearest(m, 0, k=10)[0].tolist() and len(ex.nearest(m, 0, k=10)[0]) == 4


def test_card_escapes_every_text_and_shows_every_term():
    t = tiny()
    near = ex.neighbours_table(t, np.eye(7, dtype=np.float32) + 0.1, [f"<i>t{i}</i>" for i in range(7)], 4, k=2)
    assert near["text_index"].tolist() == [0, 1]  # equal cosines: lower index first
    assert near["where"].tolist() == ["query ×3", "query ×2"] and near["text"].tolist() == ["<i>t0</i>", "<i>t1</i>"]
    assert ex.text_places(t, 4) == "negative in bm25, llm" and ex.text_places(t, 0) == "query ×3"
    body = ex.card_html(t.iloc[2].to_dict(), near, "negative", ["bm25", "llm"])
    assert "<b>is</b>" not in body and "&lt;b&gt;is&lt;/b&gt;" in body and "&lt;i&gt;t" in body
    for sym in ("s_qp", "s_qn", "s_pn", "c <b>", "h <b>", "ρ <b>", "w <b>", "FN score"):
        assert sym in body
    assert "combined evidence (fn_score 0.90; s_pn 0.90)</span>" in body  # reasons not split inside numbers
    assert "identical to the positive</span>" in body and "shared by 2 sources: bm25, llm" in body


def test_map_figure_is_webgl_with_shared_by_in_the_hover():
    t = tiny()
    pts = ex.map_points(t, pd.DataFrame({"text_index": [4, 5, 6], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0]}))
    fig = figures.explorer_map(pts, figures.source_colours(["bm25", "dense", "llm"]), highlight=0,
                               selected=np.array([0, 1]))
    spec = json.loads(fig.to_json())
    webgl = [d for d in spec["data"] if d["type"] == "scattergl"]
    assert [d["name"] for d in webgl] == ["bm25", "dense", "llm"]
    hover = "<b>bm25</b> · shared by 2 sources · 2 triplets (first shown)<br>Lyon &lt;b&gt;is&lt;/b&gt; in France."
    assert webgl[0]["text"][0].startswith(hover)
    assert webgl[1]["text"][0].startswith("<b>dense</b> · shared by 1 source · 1 triplet<br>")
    assert np.asarray(fig.data[0].customdata)[:, 0].tolist() == [0]  # the point id a selection returns
    assert "FN score %{customdata[5]:.3f}" in webgl[0]["hovertemplate"]
    assert spec["data"][-1]["name"] == "chosen row"
    assert webgl[0]["selectedpoints"] == [0] and webgl[1]["selectedpoints"] == []


# ---------------------------------------------------------------------------------------------------- the page


APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture
def explorer_app(tmp_path_factory, monkeypatch):
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built (python -m ecisem_core.demo build)")
    from ecisem_core import demo

    demo.seed_cache(tmp_path_factory.getbasetemp() / "ecisem_cache")  # the conftest's cache dir: nothing encoded
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv(WARM_UP_ENV, "0")
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    at.switch_page("views/explorer.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_explorer_page_search_then_row_opens_card(explorer_app):
    at = explorer_app
    n_demo = len(pd.read_json(DEMO_PATH, lines=True))
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and '"scattergl"' in charts[0].proto.spec and "shared by" in charts[0].proto.spec
    assert len(at.dataframe[0].value) == n_demo
    assert any("matching points drawn" in c.value for c in at.caption)

    at.text_input(key="explorer_search").input("VENUS").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value
    assert 0 < len(shown) < n_demo
    text = (shown["query"].astype(str) + shown["positive"].astype(str) + shown["negative"].astype(str)).str.lower()
    assert text.str.contains("venus").all()
    assert any(f"**{len(shown):,}** of {n_demo:,} triplets match" in m.value for m in at.markdown)
    assert "eciExplorerCard" not in "".join(h.proto.body for h in at.get("html"))

    # select the first row, as the grid would (AppTest has no row click; a read-only table's selection state
    # accepts writes through session state)
    key = at.dataframe[0].key
    at.session_state[key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = [h.proto.body for h in at.get("html") if "eciExplorerCard" in h.proto.body]
    assert len(cards) == 1
    first = shown.iloc[0]
    assert html.escape(str(first["negative"])) in cards[0] and "nearest texts to the negative" in cards[0]
    assert cards[0].count("<li>") == 5
    assert '"chosen row"' in at.get("plotly_chart")[0].proto.spec  # its point is ringed on the map


def test_filters_round_trip_through_link_parameters():
    params = ex.filters_to_params("  venus ", ["llm", "bm25"], "yes", "any")
    assert params == {"xq": "venus", "xs": ["llm", "bm25"], "xf": "yes"}
    lists = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    assert ex.filters_from_params(lists, ["bm25", "llm", "dense"]) == {"search": "venus", "sources": ["llm", "bm25"],
                                                                         "fn": "yes"}
    bad = {"xs": ["nope", "llm"], "xf": ["maybe"], "xj": ["no"], "xq": ["   "]}
    assert ex.filters_from_params(bad, ["llm"]) == {"sources": ["llm"], "junk": "no"}
    assert ex.filters_to_params("", None, "any", "any") == {}


def test_ranges_and_the_map_selection_round_trip_through_link_parameters():
    params = ex.filters_to_params("", None, "any", "any", [("s_qn", 0.25, 0.8), ("fn_score", 0.5, 1.0)], [9, 2, 9])
    assert params == {"xr": ["s_qn:0.25:0.8", "fn_score:0.5:1"], "xp": "2,9"}
    lists = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    assert ex.filters_from_params(lists, []) == {"ranges": {"s_qn": (0.25, 0.8), "fn_score": (0.5, 1.0)},
                                                 "points": (2, 9)}
    bad = {"xr": ["nope:0:1", "s_qn:0.9:0.1", "c:x:1", "h:0:inf", "rho:0.1:0.2"], "xp": ["3,a,-1,,7"]}
    assert ex.filters_from_params(bad, []) == {"ranges": {"rho": (0.1, 0.2)}, "points": (3, 7)}
    too_many = range(ex.LINK_POINTS_MAX + 1)
    assert "xp" not in ex.filters_to_params("", None, "any", "any", (), too_many)


def test_explorer_filters_travel_in_the_link_and_the_share_link(tmp_path_factory, monkeypatch):
    """A link naming the explorer's filters opens with them set; the page's share link carries them; on another
    page they leave the URL."""
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built (python -m ecisem_core.demo build)")
    from urllib.parse import parse_qs, urlsplit

    from ecisem_core import demo

    demo.seed_cache(tmp_path_factory.getbasetemp() / "ecisem_cache")
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv(WARM_UP_ENV, "0")
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params.update({"view": "explorer", "xq": "Venus", "xs": ["llm", "nope"], "xf": "no",
                            "xr": "s_qn:0.2:0.9"})
    at.run()
    at.switch_page("views/explorer.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="explorer_search").value == "Venus"
    assert at.multiselect(key="explorer_sources").value == ["llm"]
    assert at.selectbox(key="explorer_fn").value == "no"
    assert at.slider(key="explorer_range_s_qn").value == (0.2, 0.9)
    shown = at.dataframe[0].value
    assert len(shown) and set(shown["source"]) == {"llm"} and shown["s_qn"].between(0.2, 0.9).all()
    link = parse_qs(urlsplit(at.code[0].value).query)
    assert link["xq"] == ["Venus"] and link["xs"] == ["llm"] and link["xf"] == ["no"]
    assert link["xr"] == ["s_qn:0.2:0.9"]
    at.switch_page("views/leaderboard.py")
    at.run()
    assert "xq" not in at.query_params and "xq" not in parse_qs(urlsplit(at.code[0].value).query)


def test_density_view_draws_contours_under_fainter_points():
    t = tiny()
    pts = ex.map_points(t, pd.DataFrame({"text_index": [4, 5, 6], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 2.0]}))
    colours = figures.source_colours(["bm25", "dense", "llm"])
    plain = json.loads(figures.explorer_map(pts, colours).to_json())["data"]
    fig = figures.explorer_map(pts, colours, highlight=0, density=True)
    dense = json.loads(fig.to_json())["data"]
    assert all(d["type"] != "histogram2dcontour" for d in plain)
    assert dense[0]["type"] == "histogram2dcontour" and len(fig.data[0].x) == len(pts)
    assert dense[-1]["name"] == "chosen row"  # the ring stays on top
    gl = [d for d in dense if d["type"] == "scattergl"]
    assert gl and all(d["marker"]["opacity"] < min(p["marker"]["opacity"] for p in plain if p["type"] == "scattergl")
                      for d in gl)


def test_explorer_page_density_toggle(explorer_app):
    at = explorer_app
    assert '"histogram2dcontour"' not in at.get("plotly_chart")[0].proto.spec
    at.toggle(key="explorer_density").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert '"histogram2dcontour"' in at.get("plotly_chart")[0].proto.spec
