"""AppTest tests of the "False negatives" and "Annotate" pages on the bundled demo, with a temporary annotation
store (``ECISEM_ANNOTATIONS_DB``)."""
from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest, app_test
from test_app import _NavigationPagesManager  # the dashboard tests' fix: every AppTest run goes through app.py

from ecisem_core import demo
from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.io.load import read_triplets
from ecisem_core.ui import curate
from ecisem_core.ui.data import demo_path
from ecisem_core.ui.state import K
from ecisem_core.ui.text import md_unescape

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 180  # the first run embeds nothing (seeded cache) but loads the encoder and flags the demo


@pytest.fixture(autouse=True)
def _navigation_aware_apptest(monkeypatch):
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)


@pytest.fixture(scope="module", autouse=True)
def _seeded_cache(tmp_path_factory):
    """The demo's shipped vectors in the test session's embedding cache (see conftest: ECISEM_CACHE_DIR)."""
    demo.seed_cache(tmp_path_factory.getbasetemp() / "ecisem_cache")


@pytest.fixture()
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "annotations.sqlite"
    monkeypatch.setenv(curate.ANNOTATIONS_ENV, str(path))
    return path


def open_page(view: str, **params: str) -> AppTest:
    """The app opened on a page (``?view=…``); ``params`` are then put in the URL, as a link would."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["view"] = view
    at.run()
    if params:
        at.query_params.update(params)
        at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, prefix: str):
    hits = [b for b in at.button if b.label.startswith(prefix)]
    assert hits, f"no button starting with {prefix!r}: {[b.label for b in at.button]}"
    return hits[0]


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    hits = [d.value for d in at.dataframe if column in d.value.columns]
    assert hits, f"no table with a {column!r} column"
    return hits[0]


def card(at: AppTest) -> str:
    """The first triplet card (HTML) on the page."""
    hits = [h.value for h in at.html if "eci-card" in h.value]
    assert hits, "no triplet card on the page"
    return hits[0]


def text(html: str) -> str:
    """Visible text of HTML (tags removed, entities decoded)."""
    return unescape(re.sub(r"<[^>]+>", "", html))


def demo_table() -> pd.DataFrame:
    return read_triplets(str(demo_path())).triplets


# ---------------------------------------------------------------------------------------------- False negatives


def test_demo_lists_flagged_triplets_with_the_planted_false_negatives(db):
    at = open_page("false-negatives")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Likely false negatives"].replace(",", "")) > 50
    found, total = map(int, metrics["Labelled FNs flagged"].split(" / "))
    assert total > 0 and found > 0
    listed = at.dataframe[0].value
    assert list(listed.columns[:4]) == ["fn_score", "source", "reasons", "query"]
    assert listed["fn_score"].is_monotonic_decreasing and (listed["label"] == "false negative").sum() > 50
    assert all(len(r) > 0 for r in listed["reasons"])
    base = frame_with(at, "method").set_index("method")
    assert base.loc["fn_score", "auc"] > base.loc["s_qn", "auc"]  # the flagger beats ranking by s_qn
    assert {"relative-margin rule", "absolute-margin rule"} <= set(base.index)
    per_source = frame_with(at, "junk_rate")
    assert set(per_source["source"]) == set(demo_table()["source"])
    assert [t.label for t in at.tabs] == ["Send to annotation", "Export", "Import verdicts", "Learned scorer",
                                          "Baselines", "Per source"]
    assert {b.label for b in at.get("download_button")} >= {"CSV", "JSONL", "Label Studio tasks",
                                                              "Label Studio config", "Argilla records",
                                                              "Argilla settings", "Cleaned training file"}

    # filters: one source, a high score threshold, one reason
    at.multiselect(key=K.FN_SOURCES).set_value(["llm"])
    at.slider(key=K.FN_MIN_SCORE).set_value(0.9)
    at.run()
    narrowed = at.dataframe[0].value
    assert len(narrowed) and (narrowed["source"] == "llm").all() and (narrowed["fn_score"] >= 0.9).all()
    at.multiselect(key=K.FN_REASONS).set_value(["relative-margin rule"])
    at.run()
    assert all("relative-margin rule" in r for r in at.dataframe[0].value["reasons"])
    at.toggle(key=K.FN_JUNK).set_value(True)  # the demo has no junk: an empty junk list, said so
    at.run()
    assert any("0 junk negatives" in m.value for m in at.markdown)
    assert any(c.value == "None in the listed sources." for c in at.caption)


def test_send_a_selection_to_a_batch_shows_its_link(db):
    at = open_page("false-negatives")
    listed = at.dataframe[0].value
    picks = list(np.flatnonzero(~listed.duplicated(["query_id", "negative_id"]).to_numpy())[:3])
    at.session_state[K.FN_TABLE] = {"selection": {"rows": [int(i) for i in picks], "columns": []}}
    at.run()
    assert at.session_state[K.FN_SEND] == "selected"
    assert listed["query"].iloc[picks[0]] in text(card(at))  # the selected triplets as cards
    at.text_input(key=K.FN_BATCH_NAME).input("first look")
    button(at, "Send 3 triplet(s)").click()
    at.run()
    assert not at.exception
    batches = AnnotationStore(db).list_batches()
    assert batches["name"].tolist() == ["first look"] and batches["n_items"].tolist() == [3]
    items = AnnotationStore(db).items(int(batches["id"][0]))
    assert items["negative_id"].tolist() == listed["negative_id"].iloc[picks].tolist()
    assert any(s.value.startswith("Batch #1 created with 3 triplets") for s in at.success)
    assert at.code[0].value == "/annotate?batch=1"
    links = frame_with(at, "link")
    assert links["link"].tolist() == ["/annotate?batch=1"] and links["n_items"].tolist() == [3]


def test_a_bad_verdict_file_gives_a_readable_error_and_a_good_one_is_imported(db):
    at = open_page("false-negatives")
    bad = b"query_id,negative_id,verdict,annotator\nq1,n1,maybe,alice\n"
    at.get("file_uploader")[0].set_value(("my verdicts.csv", bad, "text/csv"))
    at.run()
    button(at, "Import verdicts").click()
    at.run()
    assert [md_unescape(e.value) for e in at.error] == [
        "Nothing imported — my verdicts.csv, line 2: unknown verdict 'maybe'; use one of "
        "['false_negative', 'true_negative', 'unsure'] (or fn / tn)"]
    assert AnnotationStore(db).list_batches().empty

    t = demo_table().head(2)
    good = "query_id,negative_id,verdict,annotator,comment\n" + "".join(
        f"{q},{n},{v},carol,\n" for q, n, v in zip(t["query_id"], t["negative_id"], ["fn", "tn"]))
    at.get("file_uploader")[0].set_value(("good.csv", good.encode(), "text/csv"))
    at.run()
    button(at, "Import verdicts").click()
    at.run()
    assert not at.error
    assert any(md_unescape(s.value).startswith("Imported 2 verdict(s) from good.csv into a new batch #1")
               for s in at.success)
    assert AnnotationStore(db).verdicts(1)["verdict"].tolist() == ["false_negative", "true_negative"]


def test_learned_scorer_trains_from_verdicts_and_reranks(db):
    t = demo_table()
    lab = t[t["fn_label"].notna()]
    rows = pd.concat([lab[lab["fn_label"] == 1].head(20), lab[lab["fn_label"] == 0].head(20)])
    store = AnnotationStore(db)
    b = store.create_batch("labelled", curate.batch_items(rows))
    for item, y in zip(store.items(b)["id"], rows["fn_label"]):
        store.record_verdict(int(item), "alice", "fn" if y == 1 else "tn")
    at = open_page("false-negatives")
    metrics = {m.label: m.value for m in at.metric}
    assert 0.5 < float(metrics["Cross-validated AUC"]) <= 1.0
    n_fn, n_tn = map(int, metrics["Trained on"].replace(" FN", "").replace(" TN", "").split(" · "))
    assert n_fn >= 20 and n_tn >= 20  # a verdict labels every source's triplet of that query–negative pair
    at.segmented_control(key=K.FN_RANK).set_value("fn_model")
    at.run()
    listed = at.dataframe[0].value
    assert "fn_model" in listed.columns and listed["fn_model"].is_monotonic_decreasing


# ---------------------------------------------------------------------------------------------- Annotate


def small_batch(db: Path) -> tuple[AnnotationStore, int, list[int]]:
    items = pd.DataFrame({
        "query_id": ["q1", "q2", "q3"], "negative_id": ["n1", "n2", "n3"],
        "query": ["how deep to plant tulips", "boiling point of water", "who wrote <b>Hamlet</b>"],
        "positive": ["Plant tulip bulbs about 20 cm deep.", "Water boils at 100 °C at sea level.",
                     "Shakespeare wrote Hamlet."],
        "negative": ["Tulip bulbs go 20 cm deep, pointed end up.", "Salt water boils a little hotter.",
                     "<script>alert(1)</script> Hamlet is a play by Shakespeare."],
        "source": ["bm25", "dense", "llm"], "fn_score": [0.9, 0.6, 0.8], "fn_flag": [True, True, True],
        "fn_reasons": ["relative-margin rule (s_qn 0.8 > 0.76)", "combined evidence (fn_score 0.6)", ""],
    })
    store = AnnotationStore(db)
    b = store.create_batch("tiny", items)
    return store, b, store.items(b)["id"].tolist()


def test_annotate_records_a_verdict_and_advances(db):
    store, b, ids = small_batch(db)
    at = open_page("annotate", batch=str(b), annotator="alice")
    assert at.session_state[K.ANN_BATCH] == b and at.session_state[K.ANN_NAME] == "alice"
    html = card(at)
    assert "how deep to plant tulips" in text(html) and "item 1 of 3" in html
    assert "relative-margin" not in html  # the flagger's reasons are hidden by default (no anchoring)
    at.text_input(key=f"{K.ANN_COMMENT}_{ids[0]}").input("same answer, other words")
    button(at, "False negative").click()
    at.run()
    v = store.verdicts(b)
    assert v[["item_id", "annotator", "verdict", "comment"]].values.tolist() == [
        [ids[0], "alice", "false_negative", "same answer, other words"]]
    assert "item 2 of 3" in card(at) and "boiling point of water" in text(card(at))

    button(at, "True negative").click()
    at.run()
    html = card(at)
    assert "item 3 of 3" in html and "&lt;script&gt;" in html and "<script>" not in html  # escaped
    assert "&lt;b&gt;" in html and "<b>" not in html

    button(at, "Back").click()  # revise item 2
    at.run()
    assert "item 2 of 3" in card(at) and "you answered: true negative" in card(at)
    button(at, "Unsure").click()
    at.run()
    assert "item 3 of 3" in card(at)
    current = store.verdicts(b).set_index("item_id")["verdict"]
    assert current[ids[1]] == "unsure" and len(store.verdicts(b, history=True)) == 3
    assert store.progress(b, "alice").done == 2


def test_researcher_view_shows_progress_agreement_and_flagger_precision(db):
    store, b, ids = small_batch(db)
    for who, verdicts in {"alice": ["fn", "tn", "fn"], "bob": ["fn", "tn", "tn"]}.items():
        for item, v in zip(ids, verdicts):
            store.record_verdict(item, who, v)
    at = open_page("annotate", batch=str(b))
    assert any(i.value.startswith("Type your name") for i in at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Annotators"] == "2" and metrics["Verdicts"] == "6"
    assert metrics["Flagger precision"] == "50%"  # 1 FN of 2 decided items; item 3 is a tie
    assert metrics["Mean Cohen's κ"] == f"{store.agreement(b)['kappa'].iloc[0]:.2f}"
    prog = frame_with(at, "judged")
    assert prog["annotator"].tolist() == ["alice", "bob"] and prog["judged"].tolist() == [3, 3]
    per_item = frame_with(at, "consensus")
    assert per_item["consensus"].tolist() == ["false negative", "true negative", "undecided"]


def test_annotate_without_batches_or_with_an_unknown_batch(db):
    at = open_page("annotate")
    assert any("No annotation batches yet" in i.value for i in at.info)
    small_batch(db)
    at.query_params.update(batch="99", annotator="zoe")
    at.run()
    assert any("no batch #99" in w.value for w in at.warning)
    assert at.session_state[K.ANN_BATCH] is None


def test_a_store_that_cannot_be_opened_leaves_the_list_usable(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv(curate.ANNOTATIONS_ENV, str(tmp_path / "file" / "annotations.sqlite"))
    at = open_page("false-negatives")
    assert any("cannot open the annotation store" in w.value for w in at.warning)
    assert len(at.dataframe[0].value) > 50
    assert any(e.value.startswith("cannot open the annotation store") for e in at.error)  # in the batch tabs
    at = open_page("annotate")
    assert any(e.value.startswith("cannot open the annotation store") for e in at.error)


def test_markdown_in_an_annotator_name_from_a_link_is_shown_as_text(db):
    store, b, ids = small_batch(db)
    name = "[Click to re-login](https://evil.example) **now**"
    at = open_page("annotate", batch=str(b), annotator=name)
    (bar,) = at.get("progress")
    shown = bar.proto.text
    assert "\\[Click to re\\-login\\]\\(https\\://evil.example\\) \\*\\*now\\*\\*" in shown, shown
    assert md_unescape(shown).endswith(f"judged by {name}")


def open_annotator_link(**params: str) -> AppTest:
    """An annotator's personal link opened in a fresh session (role=annotator from the first run)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"view": "annotate", "role": "annotator", **params})
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_annotator_link_shows_the_item_guidelines_and_progress_and_nothing_of_the_researcher(db):
    store, b, ids = small_batch(db)
    store.set_guidelines(b, "Judge the passage alone.\n**not bold**, <i>not html</i>")
    store.assign(b, pd.DataFrame({"item_id": [ids[0], ids[1], ids[1], ids[2]],
                                  "annotator": ["alice", "alice", "bob", "bob"], "shared": [0, 1, 1, 0]}))
    store.record_verdict(ids[1], "bob", "fn", "bob's secret comment")
    at = open_annotator_link(batch=str(b), annotator="alice")
    assert len(at.sidebar) == 0  # no dataset, encoder, weights or share link
    assert not at.tabs and not at.toggle and not at.selectbox and not at.slider and not at.dataframe
    assert not at.metric and "Researcher view" not in repr(at)
    (guide,) = at.text
    assert guide.value == "Judge the passage alone.\n**not bold**, <i>not html</i>"  # plain text, never markup
    (bar,) = at.get("progress")
    assert bar.proto.text.endswith("0 of 2 judged by alice")  # only alice's items
    html = card(at)
    assert "item 1 of 2" in html and "how deep to plant tulips" in text(html) and "relative-margin" not in html
    assert "bob" not in repr(at) and "secret comment" not in repr(at)
    button(at, "False negative").click()
    at.run()
    assert store.progress(b, "alice").done == 1 and "boiling point of water" in text(card(at))
    at.query_params.pop("role")  # the session stays an annotator's
    at.run()
    assert len(at.sidebar) == 0 and not at.tabs


def test_an_annotator_link_to_no_batch_or_for_an_unassigned_name_says_so(db):
    store, b, ids = small_batch(db)
    store.assign(b, pd.DataFrame({"item_id": ids, "annotator": ["alice"] * 3}))
    at = open_annotator_link(batch="99", annotator="alice")
    assert any("names no batch" in e.value for e in at.error) and not at.selectbox
    at = open_annotator_link(batch=str(b), annotator="zoe")
    assert any("No item of this batch is assigned" in w.value for w in at.warning)
    at = open_annotator_link(batch=str(b))  # no name in the link: typed once
    at.text_input(key=K.ANN_NAME).input("alice")
    at.run()
    assert "item 1 of 3" in card(at)


def test_the_researcher_deals_a_batch_and_gets_annotator_links(db):
    store, b, ids = small_batch(db)
    at = open_page("annotate", batch=str(b))
    assert len(at.sidebar) > 0  # the researcher's page has the settings sidebar (the annotator's has none)
    at.text_area(key=f"{K.ANN_GUIDE}_{b}").input("Answers the query = false negative.")
    button(at, "Save guidelines").click()
    at.run()
    assert store.guidelines(b) == "Answers the query = false negative."
    at.text_input(key=K.ANN_ASSIGNEES).input("alice, bob")
    at.slider(key=K.ANN_OVERLAP).set_value(1.0)
    at.run()
    button(at, "Deal the 3 items").click()
    at.run()
    assert not at.exception, at.exception
    dealt = store.assignments(b)
    assert dealt.groupby("annotator").size().to_dict() == {"alice": 3, "bob": 3}
    links = frame_with(at, "link")
    assert links["link"].str.endswith("&role=annotator").all() and links["items"].tolist() == [3, 3]
    at.text_input(key=K.ANN_ASSIGNEES).input("alice, alice")
    at.run()
    button(at, "Deal the 3 items").click()
    at.run()
    assert any("named twice" in e.value for e in at.error) and len(store.assignments(b)) == 6


def test_the_review_queue_sends_unjudged_items_and_learns_from_their_verdicts(db):
    """Default "Send": the review queue. Before the learned scorer exists it mixes the top of the FN score with a
    spread over its range; items already in a batch are never offered again; once verdicts (here the demo's planted
    labels) hold 10 of each class, the queue is chosen by the scorer and its CV AUC history is drawn."""
    truth = read_triplets([demo_path()]).triplets
    truth = truth.drop_duplicates(["query_id", "negative_id"]).set_index(["query_id", "negative_id"])["fn_label"]
    store = AnnotationStore(db)
    at = open_page("false-negatives")
    assert at.session_state[K.FN_SEND] == "queue"
    sent: set[tuple[str, str]] = set()
    for round_ in range(1, 7):
        assert any("before the learned scorer exists" in c.value or "by the learned scorer" in c.value
                   for c in at.caption)
        button(at, "Send 20 triplet(s)").click()
        at.run()
        assert not at.exception, at.exception
        batch = int(store.list_batches()["id"].max())
        items = store.items(batch)
        keys = set(zip(items["query_id"], items["negative_id"]))
        assert len(items) == 20 and not keys & sent  # nothing offered twice
        sent |= keys
        for rec in items.to_dict("records"):
            label = truth.get((rec["query_id"], rec["negative_id"]))
            store.record_verdict(rec["id"], "oracle", "fn" if label == 1.0 else "tn")
        at.run()
        if any("by the learned scorer" in c.value for c in at.caption):
            break
    else:
        pytest.fail("the learned scorer never took over the queue")
    charts = [c for c in at.get("plotly_chart") if "Cross-validated AUC as verdicts accumulate" in c.proto.spec]
    assert charts, "no learning-history chart on the Learned scorer tab"
    assert any(m.label == "Cross-validated AUC" for m in at.metric)
