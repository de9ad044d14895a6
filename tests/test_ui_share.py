"""Share links: ViewState ↔ query parameters round-trip; bad values are reported, never fatal."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ecisem_core.ui.share import OURS, decode, encode, merge_params, query_string, share_url
from ecisem_core.ui.state import K, MetricState, ViewState, view_from_state, view_to_state

CUSTOM = ViewState(dataset="path:msmarco/bm25 runs.jsonl", encoder="tfidf",
                   metric=MetricState(tau=0.125, alpha=0.0, beta=2.5, gamma=0.3, kappa=8.0, sample_size=500, seed=7),
                   sources=("bm25+dense", "llm", "a,b"), view="why", why_a="llm", why_b="bm25+dense",
                   colour="fn_score", query="q123", cap=1600)


def _parse(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_defaults_encode_to_nothing_and_decode_from_nothing():
    assert encode(ViewState()) == {}
    assert decode({}) == (ViewState(), [])


def test_every_setting_round_trips_through_a_url():
    url = share_url("http://host:8501/why?old=1#frag", encode(CUSTOM))
    assert url.startswith("http://host:8501/why?") and "old=1" not in url and "#" not in url
    params = _parse(url)
    assert params["src"] == ["bm25+dense", "llm", "a,b"]  # repeated, "+" and "," survive
    settings, notes = decode(params)
    assert settings == CUSTOM and notes == []


def test_full_encoding_round_trips_too():
    full = encode(ViewState(), full=True)
    assert set(full) >= {"ds", "enc", "tau", "a", "b", "g", "k", "n", "seed"}
    assert decode(_parse(share_url("http://h/", full)))[0] == ViewState()


@pytest.mark.parametrize("params,field,value,note", [
    ({"tau": ["abc"]}, "tau", ViewState().metric["tau"], "not a number"),
    ({"tau": ["9"]}, "tau", 0.5, "outside"),
    ({"a": ["-3"]}, "alpha", -2.0, "outside"),
    ({"n": ["10.5"]}, "sample_size", 50, "outside"),
    ({"n": ["100.5"]}, "sample_size", 100, "whole number"),
    ({"seed": ["nan"]}, "seed", ViewState().metric["seed"], "not a number"),
    ({"k": ["3"]}, "kappa", 4.0, "κ/d steps"),
    ({"k": ["-2"]}, "kappa", ViewState().metric["kappa"], "positive"),
    ({"ds": ["/etc/passwd"]}, "dataset", "demo", "expected"),
    ({"enc": ["evil"]}, "encoder", "default", "expected"),
    ({"col": ["pink"]}, "colour", "role", "expected"),
])
def test_bad_values_fall_back_with_a_note(params, field, value, note):
    view, notes = decode(params)
    assert (view.metric[field] if field in view.metric else getattr(view, field)) == value
    assert len(notes) == 1 and note in notes[0]


def test_foreign_parameters_are_ignored_and_kept():
    view, notes = decode({"batch": ["b1"], "tau": ["0.1"]})
    assert view.metric["tau"] == 0.1 and notes == []
    merged = merge_params({"batch": ["b1"], "tau": ["0.3"], "a": ["2"]},
                          encode(ViewState(metric=MetricState(tau=0.2))))
    assert merged == {"batch": ["b1"], "tau": "0.2"}  # ours replaced (a back to default: dropped), theirs kept
    assert "batch" not in OURS


def test_last_value_wins_for_scalars():
    assert decode({"tau": ["0.1", "0.2"]})[0].metric["tau"] == 0.2


def test_query_string_escapes():
    qs = query_string({"src": ["a b", "c&d"], "q": "é"})
    assert qs == "src=a+b&src=c%26d&q=%C3%A9"


def test_session_state_round_trip():
    state: dict = {}
    view_to_state(CUSTOM, state)
    assert state[K.DS_MODE] == "path" and state[K.DS_PATH] == "msmarco/bm25 runs.jsonl"
    assert state[K.ENC_KIND] == "tfidf" and state[K.SOURCES] == list(CUSTOM.sources)
    assert view_from_state(state) == CUSTOM
    local = CUSTOM.replace(encoder="path:models/e5")
    view_to_state(local, state)
    assert state[K.ENC_KIND] == "path" and view_from_state(state).encoder == "path:models/e5"


def test_config_for_dimension():
    assert ViewState().config_for(384).kappa is None  # the library default κ = 2d
    cfg = ViewState(metric=MetricState(kappa=4.0, alpha=0.5, sample_size=300)).config_for(384)
    assert cfg.kappa == 4.0 * 384 and cfg.alpha == 0.5 and cfg.sample_size == 300
    assert cfg.kappa_for(384) == 1536.0


def test_copy_button_escapes_the_link_into_an_attribute_not_the_script():
    from ecisem_core.ui.share import COPY_JS, copy_button_html

    url = 'http://h/?ds=path:"><script>alert(1)</script>&x=\'y\''
    out = copy_button_html(url)
    assert "<script>alert(1)</script>" not in out and 'data-url="http://h/?ds=path:&quot;&gt;&lt;script&gt;' in out
    assert out.endswith(COPY_JS) and "alert" not in COPY_JS
