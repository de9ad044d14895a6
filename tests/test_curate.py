"""Tests of ecisem_core.ui.curate: the review list, batches and links, exports, verdict import, the learned
scorer glue and the researcher tables (pure functions; no Streamlit)."""
from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.errors import InputError
from ecisem_core.curation.fn_model import NotEnoughVerdicts
from ecisem_core.curation.negatives import flag_triplets
from ecisem_core.ui import curate


def triplets() -> pd.DataFrame:
    """Six triplets, two sources: a copy of the positive, a near-duplicate, an encoder-preferred negative, a plain
    true negative, an LLM preamble (junk) and a hard-but-true negative."""
    rows = [
        ("q1", "capital of france", "Paris is the capital of France.", "Paris is the capital of France.", "llm",
         0.8, 0.8, 1.0, 1.0),
        ("q2", "who wrote hamlet", "Shakespeare wrote the tragedy Hamlet around 1600 in London.",
         "The tragedy Hamlet was written by Shakespeare around 1600 in London.", "llm", 0.7, 0.69, 0.97, 1.0),
        ("q3", "boiling point of water", "Water boils at 100 degrees Celsius at sea level.",
         "At sea level pure water reaches its boiling point at one hundred degrees.", "bm25", 0.6, 0.7, 0.85, 1.0),
        ("q4", "tallest mountain", "Mount Everest is the tallest mountain above sea level.",
         "The Nile is a long river that flows through eleven African countries.", "bm25", 0.7, 0.1, 0.1, 0.0),
        ("q5", "speed of light", "Light travels at about 300,000 km per second in vacuum.",
         "Here are three hard negative passages:", "llm", 0.6, 0.2, 0.2, np.nan),
        ("q6", "largest ocean", "The Pacific is the largest and deepest ocean on Earth.",
         "The Atlantic is the second largest ocean, between the Americas and Europe.", "bm25", 0.75, 0.55, 0.5, 0.0),
    ]
    t = pd.DataFrame(rows, columns=["query_id", "query", "positive", "negative", "source", "s_qp", "s_qn", "s_pn",
                                    "fn_label"])
    t["negative_id"] = [f"n{i}" for i in range(1, 7)]
    return t


def table() -> pd.DataFrame:
    t = triplets()
    sims = t[["s_qp", "s_qn", "s_pn"]].to_numpy().T
    base = t.drop(columns=["s_qp", "s_qn", "s_pn"])
    return curate.flag_table(base, *sims, flag_triplets(t))


def test_flag_table_joins_triplets_similarities_and_flags():
    tab = table()
    assert len(tab) == 6 and tab["row"].tolist() == list(range(6))
    assert {"fn_score", "fn_flag", "junk_flag", "fn_reasons", "s_qp", "s_qn", "s_pn", "fn_label"} <= set(tab.columns)
    assert tab.loc[0, "fn_score"] == 1.0 and tab.loc[0, "fn_flag"] and tab.loc[0, "junk_flag"]
    assert tab.loc[4, "junk_flag"] and not tab.loc[4, "fn_flag"]
    assert not tab.loc[3, "fn_flag"] and not tab.loc[3, "junk_flag"]


def test_reason_kinds_drop_numbers_and_keep_the_junk_prefix():
    assert curate.reason_kinds("") == []
    assert curate.reason_kinds("encoder prefers the negative (c = 0.12: s_qn 0.70 > s_qp 0.60); relative-margin "
                               "rule (s_qn 0.70 > s_qp − 0.05·|s_qp| = 0.57)") == [
        "encoder prefers the negative", "relative-margin rule"]
    assert curate.reason_kinds("identical to the positive; junk: copy of the positive") == [
        "identical to the positive", "junk: copy of the positive"]


def test_candidates_filters_ranks_and_separates_junk():
    tab = table()
    fn = curate.candidates(tab)
    assert set(fn["kind"]) == {"false negative?"}
    assert fn["row"].tolist()[0] == 0  # the copy of the positive (score 1) first, although it is also junk
    assert fn["fn_score"].is_monotonic_decreasing
    assert 3 not in fn["row"].tolist() and 4 not in fn["row"].tolist()
    with_junk = curate.candidates(tab, junk=True)
    assert with_junk.loc[with_junk["row"] == 4, "kind"].item() == "junk"
    assert curate.candidates(tab, sources=["bm25"])["source"].eq("bm25").all()
    high = curate.candidates(tab, min_score=1.0)
    assert high["row"].tolist() == [0]
    by_reason = curate.candidates(tab, reasons=["near-duplicate of the positive"])
    assert by_reason["row"].tolist() == [1]
    assert all("near-duplicate of the positive" in k for k in by_reason["reasons"])
    junk_only = curate.candidates(tab, junk=True, reasons=["junk: LLM preamble or refusal"])
    assert junk_only["row"].tolist() == [4]
    assert curate.candidates(tab, rank_by="fn_score", sources=["nope"]).empty
    with pytest.raises(InputError, match="cannot rank by"):
        curate.candidates(tab, rank_by="fn_model")


def test_reasons_present_in_flagger_order():
    kinds = curate.reasons_present(table())
    assert kinds[0] == "identical to the positive"
    assert "junk: LLM preamble or refusal" in kinds and "junk: copy of the positive" in kinds
    assert kinds.index("near-duplicate of the positive") < kinds.index("junk: LLM preamble or refusal")


def test_per_source_summary_and_baselines():
    tab = table()
    summary = curate.per_source_summary(tab).set_index("source")
    assert summary.loc["llm", "triplets"] == 3 and summary.loc["llm", "junk"] == 2
    assert summary.loc["llm", "labelled_fn"] == 2 and summary.loc["bm25", "labelled_fn"] == 1
    assert summary.loc["bm25", "flagged_rate"] == pytest.approx(summary.loc["bm25", "flagged"] / 3)
    b = curate.baselines(tab)
    assert b is not None and b["method"].tolist()[:2] == ["fn_score", "s_qn"]
    assert b["n"].iloc[0] == 5 and b["n_fn"].iloc[0] == 3  # the unlabelled row is left out
    assert b.loc[b["method"] == "fn_score", "auc"].item() == pytest.approx(1.0)
    assert curate.baselines(tab.drop(columns=["fn_label"])) is None
    assert curate.baselines(tab.assign(fn_label=np.nan)) is None


def test_batches_links_and_names(tmp_path):
    store = curate.open_store(tmp_path / "sub" / "ann.sqlite")
    assert store is curate.open_store(tmp_path / "sub" / "ann.sqlite")  # opened once per process
    rows = curate.candidates(table()).head(2)
    b = curate.send_to_batch(store, rows, "")
    items = store.items(b)
    assert items["negative_id"].tolist() == rows["negative_id"].tolist()
    assert store.list_batches().loc[0, "name"].startswith("llm · 2 triplets · " + datetime.now().strftime("%Y-%m-"))
    assert curate.batch_options(store.list_batches()) == {b: f"#{b} · {store.list_batches().loc[0, 'name']} · 2 items"}
    twice = pd.concat([rows, rows.assign(source="other")])
    b2 = curate.send_to_batch(store, twice, "dups")
    assert len(store.items(b2)) == 2 and store.items(b2)["source"].tolist() == rows["source"].tolist()
    with pytest.raises(InputError, match="nothing to send"):
        curate.send_to_batch(store, rows.iloc[:0], "x")
    base = curate.app_base("http://localhost:8501/false-negatives", "false-negatives")
    assert curate.batch_link(base, "annotate", b) == f"http://localhost:8501/annotate?batch={b}"
    assert curate.batch_link("", "annotate", 4, " ann ") == "/annotate?batch=4&annotator=ann&role=annotator"
    assert curate.parse_batch_id(["2", "5"]) == 5 and curate.parse_batch_id("0") is None


def test_a_store_that_cannot_be_opened_is_explained(tmp_path):
    (tmp_path / "file").write_text("x")
    store, error = curate.try_open_store(tmp_path / "file" / "ann.sqlite")
    assert store is None and error.startswith(f"cannot open the annotation store {tmp_path / 'file' / 'ann.sqlite'}")
    assert error.endswith(f"set {curate.ANNOTATIONS_ENV} to a writable file")
    assert curate.try_open_store(tmp_path / "ok.sqlite")[1] is None


def test_store_path_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(curate.ANNOTATIONS_ENV, str(tmp_path / "x.sqlite"))
    assert curate.annotations_path() == (tmp_path / "x.sqlite").resolve()
    monkeypatch.delenv(curate.ANNOTATIONS_ENV)
    assert curate.annotations_path() == curate.DEFAULT_ANNOTATIONS_DB


def test_exports_have_the_tool_shapes():
    rows = curate.candidates(table(), junk=True)
    csv = curate.export_download(rows, "csv")
    assert csv.file_name == "fn_candidates.csv" and csv.data.decode().splitlines()[0].startswith("query_id,")
    assert "reasons" not in csv.data.decode().splitlines()[0].split(",")
    jl = [json.loads(x) for x in curate.export_download(rows, "jsonl").data.decode().splitlines()]
    assert len(jl) == len(rows) and jl[0]["negative_id"] == rows["negative_id"].iloc[0]
    tasks = json.loads(curate.export_download(rows, "label_studio", with_reasons=True).data)
    assert tasks[0]["data"]["query"] == rows["query"].iloc[0]
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == ["false_negative"]
    hidden = json.loads(curate.export_download(rows, "label_studio").data)  # the default: no flagger's evidence
    assert "predictions" not in hidden[0] and "fn_reasons" not in hidden[0]["data"]
    assert curate.export_download(rows, "label_studio_config").data.startswith(b"<View>")
    recs = [json.loads(x) for x in curate.export_download(rows, "argilla", with_reasons=True).data.decode()
            .splitlines()]
    assert recs[0]["suggestions"]["verdict"]["value"] == "false_negative" and "fields" in recs[0]
    assert "reasons" not in json.loads(curate.export_download(rows, "argilla").data.decode().splitlines()[0])[
        "fields"]
    assert json.loads(curate.export_download(rows, "argilla_settings").data)["questions"][0]["name"] == "verdict"
    with pytest.raises(InputError, match="unknown export"):
        curate.export_download(rows, "xml")


def test_training_download_drops_junk_and_likely_false_negatives():
    tab = table()
    p = tab["fn_score"].to_numpy()
    dl, n = curate.training_download(tab, p, "drop", 0.5, "jsonl")
    assert dl.file_name == "cleaned_training.jsonl"
    recs = [json.loads(x) for x in dl.data.decode().splitlines()]
    assert n == len(recs) and {r["negative_id"] for r in recs} <= {"n4", "n6", "n3"}
    assert "n5" not in {r["negative_id"] for r in recs} and "n1" not in {r["negative_id"] for r in recs}
    dl, n = curate.training_download(tab, p, "weight", 0.5, "csv")
    frame = pd.read_csv(pd.io.common.BytesIO(dl.data))
    assert n == 4 and "weight" in frame.columns and frame["weight"].between(0, 1).all()
    with pytest.raises(InputError):
        curate.training_download(tab, p, "drop", 0.5, "xlsx")


def test_import_verdicts_into_a_batch_and_into_a_new_one(tmp_path):
    store = AnnotationStore(tmp_path / "a.sqlite")
    tab = table()
    ok = b"query_id,negative_id,verdict,annotator\nq2,n2,fn,alice\nq4,n4,tn,alice\n"
    v = curate.read_uploaded_verdicts(ok, "my verdicts.csv")
    imp = curate.import_verdicts(store, v, None, tab)
    assert imp.created and imp.n_verdicts == 2
    assert store.items(imp.batch_id)["negative_id"].tolist() == ["n2", "n4"]
    assert store.verdicts(imp.batch_id)["verdict"].tolist() == ["false_negative", "true_negative"]
    again = curate.import_verdicts(store, curate.read_uploaded_verdicts(b"item_id,verdict,annotator\n"
                                                                          + f"{store.items(imp.batch_id)['id'][0]},"
                                                                          "unsure,bob\n".encode(), "v.csv"),
                                   imp.batch_id)
    assert not again.created and again.n_verdicts == 1


@pytest.mark.parametrize("content, message", [
    (b"query_id,negative_id,verdict,annotator\nq2,n2,maybe,alice\n",
     "my file.csv, line 2: unknown verdict 'maybe'"),
    (b"query_id,negative_id,annotator\nq2,n2,alice\n", "my file.csv, line 1: no 'verdict' column"),
    (b"query_id,negative_id,verdict,annotator\nq2,n2,fn,alice\nq9,n9,tn,alice\n",
     "my file.csv, line 3: no triplet of the current dataset has query_id 'q9' and negative_id 'n9'"),
])
def test_bad_verdict_files_are_named_with_file_and_line(tmp_path, content, message):
    store = AnnotationStore(tmp_path / "a.sqlite")
    with pytest.raises(InputError) as err:
        v = curate.read_uploaded_verdicts(content, "my file.csv")
        curate.import_verdicts(store, v, None, table())
    assert str(err.value).startswith(message)
    assert store.list_batches().empty  # nothing half-imported


def test_learned_scorer_from_store_verdicts(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    fn = np.arange(n) % 2 == 0
    t = pd.DataFrame({
        "query_id": [f"q{i}" for i in range(n)], "negative_id": [f"n{i}" for i in range(n)],
        "query": [f"topic{i} question" for i in range(n)],
        "positive": [f"topic{i} answer alpha{i} beta{i} gamma{i}" for i in range(n)],
        "negative": [f"topic{i} answer alpha{i} beta{i} gamma{i} again" if f else f"topic{i} other words here {i}"
                     for i, f in enumerate(fn)],
        "source": "s", "s_qp": 0.7, "s_qn": np.where(fn, 0.68, 0.5) + rng.normal(0, 0.02, n),
        "s_pn": np.where(fn, 0.9, 0.5) + rng.normal(0, 0.03, n),
    })
    tab = curate.flag_table(t.drop(columns=["s_qp", "s_qn", "s_pn"]), t["s_qp"], t["s_qn"], t["s_pn"],
                            flag_triplets(t))
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("all", curate.batch_items(tab))
    for item, f in zip(store.items(b)["id"][:15], fn[:15]):
        store.record_verdict(int(item), "alice", "fn" if f else "tn")
    v = curate.all_verdicts(store)
    assert curate.label_counts(tab, v) == (8, 7)
    with pytest.raises(NotEnoughVerdicts, match="have 8 false negative"):
        curate.train_from_verdicts(tab, v)
    for item, f in zip(store.items(b)["id"][15:], fn[15:]):
        store.record_verdict(int(item), "alice", "fn" if f else "tn")
    v = curate.all_verdicts(store)
    assert curate.verdicts_fingerprint(v) != curate.verdicts_fingerprint(v.iloc[:-1])
    model = curate.train_from_verdicts(tab, v)
    assert model.n_false_negative == 30 and model.cv_auc > 0.9
    p = model.predict(tab)
    assert p[fn].mean() > p[~fn].mean()
    empty = curate.all_verdicts(AnnotationStore(tmp_path / "empty.sqlite"))
    assert empty.empty and tuple(empty.columns) == curate.VERDICT_COLUMNS == tuple(v.columns)
    assert curate.label_counts(tab, curate.EMPTY_VERDICTS) == (0, 0)


def test_researcher_tables_and_previous_item(tmp_path):
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("b", curate.batch_items(curate.candidates(table())))
    ids = store.items(b)["id"].tolist()
    store.record_verdict(ids[0], "alice", "fn")
    store.record_verdict(ids[1], "alice", "tn", "topic only")
    store.record_verdict(ids[0], "bob", "fn")
    prog = curate.annotator_progress(store, b)
    assert prog["annotator"].tolist() == ["alice", "bob"] and prog["judged"].tolist() == [2, 1]
    assert prog["total"].tolist() == [len(ids)] * 2 and prog.loc[0, "share"] == pytest.approx(2 / len(ids))
    assert prog.loc[0, "false_negative"] == 1 and prog.loc[0, "true_negative"] == 1
    items = curate.item_table(store, b)
    assert items.loc[0, "alice"] == "false negative" and items.loc[0, "consensus"] == "false negative"
    assert items.loc[1, "consensus"] == "true negative" and items.loc[2, "consensus"] == "—"
    assert items.loc[2, "bob"] == "" and items["position"].tolist()[:2] == [1, 2]
    assert len(prog.loc[0, "last"]) == 19 and "T" not in prog.loc[0, "last"]
    prev = curate.previous_item(store, b, "alice", None)
    assert prev["id"] == ids[1] and prev["current_verdict"] == "true_negative" and prev["current_comment"] == "topic only"
    assert curate.previous_item(store, b, "alice", prev["position"])["id"] == ids[0]
    assert curate.previous_item(store, b, "carol", None) is None
    assert curate.annotator_progress(AnnotationStore(tmp_path / "e.sqlite"), 1).empty
    csv = curate.verdicts_csv(store.verdicts(b)).decode()
    assert csv.splitlines()[0].startswith("item_id,query_id,negative_id,verdict,annotator,comment")
    idf = curate.batch_idf(store.items(b))
    assert idf["paris"] > 0
    wider = curate.batch_idf(store.items(b), [f"filler text number {i}" for i in range(50)] + ["Paris"])
    assert wider["filler"] < wider["paris"] and wider["number"] < idf["paris"]


def test_learning_history_steps_and_queued_keys(tmp_path):
    from ecisem_core.curation.active import item_keys
    from ecisem_core.curation.review import history_steps

    assert history_steps(50) == [20, 40, 50] and history_steps(0) == [] and history_steps(20) == [20]
    steps = history_steps(1000)
    assert steps == [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]  # stride 20·⌈1000/200⌉ = 100, ≤ 10 points
    assert history_steps(215) == [40, 80, 120, 160, 200, 215]  # stride 20·⌈215/200⌉ = 40
    store = AnnotationStore(tmp_path / "a.sqlite")
    assert curate.queued_keys(store) == set()
    items = pd.DataFrame({"query_id": ["q1", "q2"], "negative_id": ["n1", "n2"], "query": ["a", "b"],
                          "positive": ["p", "p"], "negative": ["x", "y"]})
    store.create_batch("b", items)
    assert curate.queued_keys(store) == set(item_keys(items).tolist())


def test_cv_auc_history_grows_with_the_verdicts():
    from test_fn_model import labelled

    tab, y = labelled(120)
    verdicts = pd.DataFrame({"verdict_id": np.arange(1, 61), "item_id": np.arange(60),
                             "query_id": tab["query_id"].iloc[:60].to_numpy(),
                             "negative_id": tab["negative_id"].iloc[:60].to_numpy(), "annotator": "a",
                             "verdict": np.where(y[:60] == 1.0, "false_negative", "true_negative")})
    hist = curate.cv_auc_history(tab, verdicts)
    assert list(hist.columns) == ["n_verdicts", "cv_auc", "cv_auc_std", "n_false_negative", "n_true_negative"]
    assert hist["n_verdicts"].tolist() == [20, 40, 60]  # 20 verdicts = 10 FN + 10 TN: just enough to train
    assert hist["n_false_negative"].tolist() == [10, 20, 30] and hist["n_true_negative"].tolist() == [10, 20, 30]
    last = curate.train_from_verdicts(tab, verdicts)
    assert hist["cv_auc"].iloc[-1] == pytest.approx(last.cv_auc)  # the last point is the model on every verdict
    assert hist["cv_auc"].iloc[-1] > 0.8
    assert curate.cv_auc_history(tab, verdicts.iloc[0:0]).empty
    assert curate.cv_auc_history(tab, verdicts.iloc[:19]).empty  # 10 FN + 9 TN: no model yet
