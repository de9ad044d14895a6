"""The dashboard through ``streamlit.testing.v1.AppTest``: every page on the demo with the real default encoder
(its vectors seeded into the test cache from the shipped demo embeddings, so nothing is encoded), a slider that
reorders the leaderboard, uploads, the data root, share links."""
from __future__ import annotations

import html
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest, app_test

from ecisem_core.ui.data import DEMO_PATH
from ecisem_core.ui.projections import WARM_UP_ENV
from ecisem_core.ui.paths import DATA_ROOT_ENV
from ecisem_core.ui.share import decode
from ecisem_core.ui.state import K, widget_key
from ecisem_core.ui.text import md_unescape

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
TIMEOUT = 600  # the first run may embed or load a model on a busy machine


class _NavigationPagesManager(PagesManager):
    """AppTest (Streamlit 1.67) resets ``PagesManager.uses_pages_directory`` before every run; with a ``pages/``
    folder next to the script that makes every run after the first execute the page file alone, without
    ``app.py`` (no sidebar, no navigation) — the legacy multipage path (streamlit PR #14217 introduced the reset).
    The real server switches that flag off for good at the first ``st.navigation`` call; this does the same."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@pytest.fixture(autouse=True)
def _navigation_aware_apptest(monkeypatch):
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv(WARM_UP_ENV, "0")  # the Geometry test compiles UMAP itself; no second compilation alongside


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """The session's embedding cache holding the demo's shipped default-encoder vectors."""
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built (python -m ecisem_core.demo build)")
    from ecisem_core import demo

    root = tmp_path_factory.getbasetemp() / "ecisem_cache"
    demo.seed_cache(root)
    return root


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root


def start(page: str | None = None, params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if params:
        at.query_params.update(params)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


BOARD_COLUMNS = ["rank", "source", "eci_sem", "ci", "eci_sem_per_dim", "info", "diversity", "eci_v1", "n",
                 "n_sampled", "fn_rate", "stability"]
ROW = re.compile(r'<tr data-source="[^"]*">(.*?)</tr>')
CELL = re.compile(r'<td[^>]*? data-v="([^"]*)"')


def board_html(at: AppTest) -> str | None:
    return next((h.proto.body for h in at.get("html") if 'data-testid="eciBoard"' in h.proto.body), None)


def board(at: AppTest) -> pd.DataFrame:
    """The leaderboard table, read back from its HTML (cells' sort keys; "" where still computing)."""
    body = board_html(at)
    assert body is not None, "no leaderboard table on the page"
    rows = [dict(zip(BOARD_COLUMNS, (html.unescape(v) for v in CELL.findall(r)))) for r in ROW.findall(body)]
    t = pd.DataFrame(rows, columns=BOARD_COLUMNS)
    for c in ("rank", "eci_sem", "eci_sem_per_dim", "info", "diversity", "eci_v1", "n", "n_sampled", "fn_rate",
              "stability"):
        t[c] = pd.to_numeric(t[c], errors="coerce")  # "" (still computing) → NaN
    return t


def order(at: AppTest) -> list[str]:
    return board(at)["source"].tolist()


def library_order(**config) -> list[str]:
    from ecisem_core.config import ScoreConfig
    from ecisem_core.io.load import read_triplets
    from ecisem_core.score import prepare, score_prepared

    prep = prepare(read_triplets(DEMO_PATH).triplets)
    res = score_prepared(prep, ScoreConfig(**config), uncertainty=False, contributions=False)
    return res.sources["source"].tolist()


def test_leaderboard_default_load_on_the_demo(demo_cache):
    at = start()
    demo_sources = sorted(pd.read_json(DEMO_PATH, lines=True)["source"].unique())
    table = board(at)
    assert sorted(table["source"]) == demo_sources and len(demo_sources) >= 6
    assert table["rank"].tolist() == list(range(1, len(demo_sources) + 1))
    assert order(at) == library_order()  # the page shows the library's numbers, in its order
    assert (table["eci_sem"] > 0).all() and table["eci_sem"].is_monotonic_decreasing
    assert at.metric[0].value == order(at)[0]
    assert "all-MiniLM-L6-v2" in at.get("html")[0].proto.body or "MiniLM" in str(at.main)
    assert at.query_params.get("view") in ("leaderboard", ["leaderboard"])


def test_the_demo_s_prepared_terms_are_kept_on_disk_and_an_upload_s_are_not(demo_cache, monkeypatch):
    from ecisem_core.config import ScoreConfig
    from ecisem_core.embed.encoders import get_encoder
    from ecisem_core.io.parsed_cache import read_triplets_cached
    from ecisem_core.prepared_cache import entry_name

    start()  # the demo: a file, kept (ecisem_core/prepared_cache.py), under the entry of its table
    table = read_triplets_cached(DEMO_PATH, demo_cache / "inputs").triplets
    assert (demo_cache / "prepared" / f"{entry_name(table, get_encoder(None), ScoreConfig())}.json").exists()
    fresh = demo_cache.parent / "upload-cache"
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(fresh))
    shutil.copytree(demo_cache, fresh, ignore=shutil.ignore_patterns("prepared", "inputs"))
    at = start()
    kept = sorted((fresh / "prepared").glob("*"))
    part = pd.read_json(DEMO_PATH, lines=True).iloc[:400]  # a table no other test prepared
    at.button_group(key=K.DS_MODE).set_value("upload").run()
    at.file_uploader(key=K.DS_UPLOAD).set_value(("part.jsonl", part.to_json(orient="records", lines=True).encode(),
                                                 "application/json")).run()
    assert not at.exception and not at.error and sorted(order(at)) == sorted(part["source"].unique())
    assert sorted((fresh / "prepared").glob("*")) == kept  # scored, and nothing of it kept


def test_uncertainty_fills_in_for_the_current_settings(demo_cache):
    at = start()
    deadline = time.time() + TIMEOUT
    bars = []  # the progress bar's texts while the bootstrap runs
    while board(at)["ci"].eq("").any():
        assert time.time() < deadline, "bootstrap did not finish"
        bars += [(b.proto.value, b.proto.text) for b in at.get("progress")]
        time.sleep(2)
        at.run()
    assert bars and bars[0][1].startswith("95% intervals, P(A > B), rank stability: ")
    assert all(0 <= v <= 100 for v, _ in bars)
    assert not at.get("progress")  # gone once the columns are filled
    table = board(at)
    for ci, score in zip(table["ci"], table["eci_sem"]):
        lo, hi = (float(x) for x in ci.split(" – "))
        assert lo <= score * (1 + 1e-3) and score <= hi * (1 + 1e-3)
    assert table["stability"].between(0, 1).all()
    assert board_html(at).count('class="badge b-') == len(table)
    assert any(m.label.startswith("P(") and m.value != "…" for m in at.metric)
    assert len(at.get("plotly_chart")) == 3  # ECI_sem with CI, contributions, P(A > B)


def wait_for_frame(at: AppTest, column: str, failure: str) -> pd.DataFrame:
    """Re-run the page until a table with ``column`` appears (a background result landing); returns it."""
    deadline = time.time() + TIMEOUT
    while not (hits := [d.value for d in at.dataframe if column in d.value.columns]):
        assert time.time() < deadline, failure
        time.sleep(2)
        at.run()
    return hits[0]


def test_fn_what_if_shows_the_ranking_without_flagged_triplets(demo_cache):
    """Once the contributions are in, the leaderboard's what-if lists each source's rank with and without its
    flagged false negatives: the library's eci_sem_no_fn / rank_no_fn / fn_share for the same settings."""
    from ecisem_core.io.load import read_triplets
    from ecisem_core.score import prepare, score_prepared

    at = start()
    what = wait_for_frame(at, "rank without flagged", "contributions did not finish")
    assert any(e.label.startswith("What if the flagged false negatives were left out?") for e in at.expander)
    lib = score_prepared(prepare(read_triplets(DEMO_PATH).triplets), uncertainty=False).sources.set_index("source")
    got = what.set_index("source")
    assert got.index.tolist() == lib.sort_values("rank").index.tolist()
    assert got["rank without flagged"].tolist() == lib.loc[got.index, "rank_no_fn"].tolist()
    assert np.allclose(got["share from flagged"], lib.loc[got.index, "fn_share"], rtol=1e-6)


def test_fn_what_if_adds_the_ranking_without_the_judged_false_negatives(demo_cache, tmp_path, monkeypatch):
    """With verdicts in the annotation store, the what-if also leaves out the triplets the annotators judged false
    negatives: the same numbers as ecisem_core.score.eci_sem_without on those rows."""
    from ecisem_core.config import ScoreConfig
    from ecisem_core.curation.annotations import AnnotationStore
    from ecisem_core.io.load import read_triplets
    from ecisem_core.score import eci_sem_without, prepare

    monkeypatch.setenv("ECISEM_ANNOTATIONS_DB", str(tmp_path / "a.sqlite"))
    table = read_triplets(DEMO_PATH).triplets
    judged = table[(table["fn_label"] == 1.0) & (table["source"] == "llm")].drop_duplicates(
        ["query_id", "negative_id"]).head(8)
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("judged", judged)
    for item in store.items(b)["id"]:
        store.record_verdict(int(item), "alice", "fn")
    what = wait_for_frame(start(), "rank without judged FNs", "the judged what-if did not appear").set_index("source")
    prep = prepare(table)
    keys = set(zip(judged["query_id"], judged["negative_id"]))
    drop = np.array([k in keys for k in zip(prep.triplets["query_id"], prep.triplets["negative_id"])])
    lib = eci_sem_without(prep, ScoreConfig(), drop)
    assert np.allclose(what["ECI_sem without judged FNs"], [lib[n] for n in what.index], rtol=1e-9)
    hit = set(prep.triplets.loc[drop, "source"])  # a verdict on a pair labels it in every source that mined it
    assert "llm" in hit and set(what.index) - hit
    for name in what.index:
        assert (abs(what.loc[name, "share from judged FNs"]) > 1e-9) == (name in hit), name


def test_a_slider_change_reorders_the_leaderboard(demo_cache):
    at = start()
    before = order(at)
    at.slider(key=widget_key("tau")).set_value(0.2).run()
    after = order(at)
    assert before == library_order() and after == library_order(tau=0.2)
    assert after != before and after[0] != before[0]  # on the demo, τ = 0.2 puts a different source first
    assert at.query_params["tau"] in ("0.2", ["0.2"])
    at.slider(key=widget_key("tau")).set_value(0.05).run()
    assert order(at) == before


def test_a_rerun_on_the_same_data_draws_the_page_first_and_never_stays_on_old_data(demo_cache, data_root):
    """A slider move reruns the page before the sidebar (ui/sidebar.resumable), with this run's settings; the
    sidebar is whole afterwards; a file changed on disk meanwhile is picked up in the same interaction."""
    path = data_root / "copy.jsonl"
    shutil.copy(DEMO_PATH, path)
    at = start(params={"ds": "path:copy.jsonl"})
    assert order(at) == library_order()
    widgets_before = sorted(w.key for w in at.sidebar.slider)
    at.slider(key=widget_key("tau")).set_value(0.2).run()
    assert not at.exception and order(at) == library_order(tau=0.2)
    assert sorted(w.key for w in at.sidebar.slider) == widgets_before
    assert at.slider(key=widget_key("tau")).value == 0.2
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [ln for ln in lines if json.loads(ln)["source"] in {"bm25", "dense"}]
    assert 0 < len(kept) < len(lines)
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new modification time, whatever the clock
    at.slider(key=widget_key("tau")).set_value(0.05).run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(order(at)) == ["bm25", "dense"]


def test_invalid_upload_shows_a_readable_error(demo_cache):
    at = start()
    at.button_group(key=K.DS_MODE).set_value("upload").run()
    at.file_uploader(key=K.DS_UPLOAD).set_value(
        ("broken.jsonl", b'{"query": "q", "positive": "p", "negative": "n"}\n{"query": oops}\n',
         "application/json")).run()
    assert not at.exception
    errors = [md_unescape(e.value) for e in at.error]   # user text is markdown-escaped on the page (issue 14)
    assert any("broken.jsonl" in e and "line 2" in e and "JSON" in e for e in errors), errors
    assert len([e for e in errors if "broken.jsonl" in e]) == 1, errors  # shown once (page), not also in the sidebar
    assert board_html(at) is None  # no stale leaderboard of another dataset
    at.file_uploader(key=K.DS_UPLOAD).set_value(("empty.csv", b"query,positive\nq,p\n", "text/csv")).run()
    assert any("empty.csv" in md_unescape(e.value) and "negative" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_uploaded_text_is_escaped_on_the_why_page(demo_cache):
    rows = []
    for i in range(12):
        for src, neg in (("a", f"<script>alert({i})</script> topic {i} shared words"), ("b", f"other text {i}")):
            rows.append({"query": f"query {i} topic", "positive": f"topic {i} answer", "negative": neg,
                         "source": src})
    body = pd.DataFrame(rows).to_csv(index=False).encode()
    at = start()
    at.button_group(key=K.ENC_KIND).set_value("tfidf").run()
    at.button_group(key=K.DS_MODE).set_value("upload").run()
    at.file_uploader(key=K.DS_UPLOAD).set_value(("evil.csv", body, "text/csv")).run()
    assert sorted(order(at)) == ["a", "b"]
    at.switch_page("views/why_rank.py").run()
    assert not at.exception, [e.value for e in at.exception]
    cards = "".join(h.proto.body for h in at.get("html"))
    assert "&lt;script&gt;" in cards or "&lt;<mark" in cards
    assert "<script>alert" not in cards  # the only scripts are our own (sort, copy), holding no user text


def test_path_outside_the_data_root_is_refused_and_inside_is_read(demo_cache, data_root):
    at = start()
    at.button_group(key=K.DS_MODE).set_value("path").run()
    at.text_input(key=K.DS_PATH).set_value("/etc/passwd").run()
    assert any("outside the data root" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key=K.DS_PATH).set_value("../../secret.jsonl").run()
    assert any("outside the data root" in e.value for e in at.error)
    shutil.copy(DEMO_PATH, data_root / "copy.jsonl")
    at.text_input(key=K.DS_PATH).set_value("copy.jsonl").run()
    assert not at.error and order(at) == library_order()
    assert at.query_params["ds"] in ("path:copy.jsonl", ["path:copy.jsonl"])


def test_files_inside_an_accepted_folder_stay_in_the_data_root(demo_cache, data_root, tmp_path):
    """A symlink inside a data folder and a model folder of symlinks to a model outside are refused by the share
    link's ``ds=path:`` / ``enc=path:`` (ecisem_core.confine); nothing of the outside file reaches the page."""
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = "SECRET-TEXT-OUTSIDE-THE-ROOT"
    (outside / "secret.jsonl").write_text(json.dumps({"query_id": "x", "query": "q", "positive": "p",
                                                       "negative": secret}) + "\n")
    folder = data_root / "folder_in"
    folder.mkdir()
    shutil.copy(DEMO_PATH, folder / "demo.jsonl")
    os.symlink(outside / "secret.jsonl", folder / "zz.jsonl")
    at = start(params={"ds": "path:folder_in"})
    assert any("outside the data root" in e.value for e in at.error), [e.value for e in at.error]
    shown = " ".join(str(getattr(e, "value", "")) for e in [*at.markdown, *at.caption, *at.error])
    assert secret not in shown and secret not in "".join(h.proto.body for h in at.get("html"))
    from ecisem_core.embed.encoders import default_encoder
    mdl = data_root / "mdl"
    mdl.mkdir()
    for f in Path(default_encoder().name_or_path).iterdir():
        os.symlink(f, mdl / f.name)
    at = start(params={"enc": "path:mdl"})
    assert any("outside the data root" in e.value for e in at.error), [e.value for e in at.error]


def test_why_this_rank_page(demo_cache):
    at = start("views/why_rank.py")
    top = library_order()
    assert at.selectbox(key=K.WHY_A).value == top[0] and at.selectbox(key=K.WHY_B).value == top[1]
    labels = [m.label for m in at.metric]
    assert labels[:2] == [f"ECI_sem {top[0]}", f"ECI_sem {top[1]}"]
    terms = at.dataframe[0].value  # the term-by-term table
    assert list(terms["part"])[-1] == "Δ log ECI_sem"
    delta = terms["Δ (A − B)"]
    assert abs(delta.iloc[:-1].sum() - delta.iloc[-1]) < 1e-9 and delta.iloc[-1] > 0
    assert len(at.get("plotly_chart")) == 2  # waterfall, term distributions
    cards = "".join(h.proto.body for h in at.get("html"))
    assert cards.count('class="eci-card"') == 4 * 5 and "<mark" in cards
    at.selectbox(key=K.WHY_B).set_value(top[-1]).run()
    assert not at.exception and at.metric[1].label == f"ECI_sem {top[-1]}"
    assert at.query_params["B"] in (top[-1], [top[-1]])


def test_geometry_page(demo_cache):
    at = start("views/geometry.py")
    charts = at.get("plotly_chart")
    assert len(charts) == 1 and '"scattergl"' in charts[0].proto.spec
    assert any("unique texts laid out by UMAP" in c.value for c in at.caption)
    at.button_group(key=K.COLOUR).set_value("w").run()
    assert "negatives by w" in at.get("plotly_chart")[0].proto.spec
    demo = pd.read_json(DEMO_PATH, lines=True)
    qid = demo.loc[demo["source"] == "bm25", "query_id"].iloc[0]  # bm25 (360 rows) is sampled whole at cap 400
    at.selectbox(key=K.QUERY).set_value(qid).run()
    names = [t.get("name") for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]]
    assert "q→p" in names and "q→n" in names
    assert at.query_params["q"] in (qid, [qid]) and at.query_params["col"] in ("w", ["w"])
    assert any("Loaded from cache" in c.value for c in at.caption)  # the layout is computed once


def test_share_link_reproduces_the_view(demo_cache):
    params = {"tau": "0.2", "a": "0.5", "k": "4", "n": "500", "seed": "3", "view": "why", "A": "llm",
              "B": "random", "src": ["llm", "random", "dense"]}
    at = start(params=params)
    assert at.slider(key=widget_key("tau")).value == 0.2 and at.slider(key=widget_key("alpha")).value == 0.5
    assert at.select_slider(key=widget_key("kappa")).value == 4.0
    assert at.number_input(key=widget_key("sample_size")).value == 500
    assert at.number_input(key=widget_key("seed")).value == 3
    assert sorted(at.multiselect(key=K.SOURCES).value) == ["dense", "llm", "random"]
    assert at.selectbox(key=K.WHY_A).value == "llm" and at.selectbox(key=K.WHY_B).value == "random"
    link = at.code[0].value
    view, notes = decode(parse_qs(urlsplit(link).query))
    assert notes == [] and [view.metric[n] for n in ("tau", "alpha", "kappa", "sample_size")] == [0.2, 0.5, 4.0, 500]
    assert view.view == "why" and set(view.sources) == {"llm", "random", "dense"}
    # the live URL carries the same settings
    assert at.query_params["A"] in ("llm", ["llm"])


def test_bad_share_link_is_explained_not_fatal(demo_cache):
    at = start(params={"tau": "banana", "src": ["nope"], "k": "3"})
    notes = " ".join(w.value for w in at.warning)
    assert "tau" in notes and "nope" in notes and "κ/d" in notes
    assert at.slider(key=widget_key("tau")).value == 0.05 and at.select_slider(key=widget_key("kappa")).value == 4.0
    assert len(order(at)) >= 6  # unknown source dropped: all sources shown


def test_local_encoder_outside_the_data_root_is_refused(demo_cache, data_root):
    at = start()
    before = order(at)
    at.button_group(key=K.ENC_KIND).set_value("path").run()
    at.text_input(key=K.ENC_PATH).set_value("/usr/lib").run()
    assert any("outside the data root" in e.value for e in at.error), [e.value for e in at.error]
    assert order(at) == before  # the default encoder keeps scoring meanwhile
    at.text_input(key=K.ENC_PATH).set_value("no-such-model").run()
    assert any("nothing at" in e.value for e in at.error)


def test_model_name_from_the_local_hugging_face_cache(demo_cache, tmp_path, monkeypatch):
    """"Model name" loads a sentence-transformers model by its hub id from this machine's Hugging Face cache,
    offline (a cache built here from the default model's files); an id not in the cache or not an id is refused
    with a message, and nothing is downloaded."""
    from ecisem_core.embed.encoders import default_encoder

    hub = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = hub / "models--local--minilm" / "snapshots" / commit
    snap.mkdir(parents=True)
    for f in Path(default_encoder().name_or_path).iterdir():
        os.symlink(f, snap / f.name)
    (hub / "models--local--minilm" / "refs").mkdir()
    (hub / "models--local--minilm" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(tmp_path / "emb"))
    at = start(params={"enc": "hf:local/minilm"})
    assert not at.error, [e.value for e in at.error]
    assert at.button_group(key=K.ENC_KIND).value == "name" and at.text_input(key=K.ENC_NAME).value == "local/minilm"
    assert "encoder local/minilm (d = 384)" in "".join(h.proto.body for h in at.get("html"))
    assert order(at) == library_order()  # the same weights as the default: the same ranking
    at = start(params={"enc": "hf:nobody/not-cached"})
    assert any("offline" in e.value for e in at.error), [e.value for e in at.error]
    at = start(params={"enc": "hf:../../etc"})
    assert any("enc" in w.value for w in at.warning)  # not a model id: the link's value is ignored, with a note


@pytest.mark.slow
def test_default_encoder_encodes_an_upload_from_scratch(tmp_path, monkeypatch):
    """The real default encoder (all-MiniLM-L6-v2, offline) runs its forward passes: an empty embedding cache and
    a dataset no other test prepared (a slice of the demo, uploaded)."""
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built")
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(cache))
    demo = pd.read_json(DEMO_PATH, lines=True)
    part = demo[demo["topic"].isin(sorted(demo["topic"].unique())[:2])]
    at = start()
    at.button_group(key=K.DS_MODE).set_value("upload").run()
    at.file_uploader(key=K.DS_UPLOAD).set_value(("slice.jsonl", part.to_json(orient="records", lines=True).encode(),
                                                 "application/json")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert sorted(order(at)) == sorted(part["source"].unique())
    assert list(cache.rglob("shard-*.npz")), "nothing was encoded into the cache"
