"""Evaluation data: BEIR folders, query/passage pair files, held-out splits, subsampling and the leak guard."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import (
    EvalData,
    load_beir,
    load_eval,
    load_pairs,
    normalise_query,
    remove_eval_leaks,
    split_from_triplets,
    subsample,
)

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "external" / "llm-enhanced-dpr"


def _write_beir(folder: Path, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td3\t1\n") -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps(r) for r in [
            {"_id": "d1", "title": "Cats", "text": "Cats purr."},
            {"_id": "d2", "title": "", "text": "Felines are small."},
            {"_id": "d3", "text": "Paris is in France."},
            {"_id": "d4", "title": "Dogs", "text": "Dogs bark."},
        ]) + "\n", encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps(r) for r in [
            {"_id": "q1", "text": "what do cats do"},
            {"_id": "q2", "text": "where is paris"},
            {"_id": "q3", "text": "no judgements for me"},
        ]) + "\n", encoding="utf-8")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


def test_beir_folder(tmp_path: Path) -> None:
    data = load_beir(_write_beir(tmp_path / "beir"))
    assert data.queries == {"q1": "what do cats do", "q2": "where is paris"}  # q3 has no qrels: dropped
    assert data.corpus["d1"] == "Cats Cats purr."
    assert data.corpus["d2"] == "Felines are small."
    assert data.qrels == {"q1": {"d1": 1, "d2": 2}, "q2": {"d3": 1}}
    assert data.n_passages == 4
    assert load_eval(tmp_path / "beir") == data


def test_beir_bad_qrels_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "beir", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n")
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.line == 3 and "d9" in err.value.problem and err.value.path.endswith("test.tsv")


def test_beir_bad_json_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "beir")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.line == 2 and err.value.path.endswith("queries.jsonl")


def test_pairs_tsv_merges_repeated_queries(tmp_path: Path) -> None:
    path = tmp_path / "pairs.tsv"
    path.write_text('query_text\tgold_passage\nwhat is "x"\tX is a "letter".\nwhat is "x"\tX also marks '
                    'spots.\nwho\tSomeone.\n', encoding="utf-8")
    data = load_pairs(path)
    assert data.n_queries == 2 and data.n_passages == 3
    assert sorted(len(r) for r in data.qrels.values()) == [1, 2]
    assert 'X is a "letter".' in data.corpus.values()  # bare quotes kept: TSV is read without quoting


def test_pairs_csv_aliases_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "pairs.csv"
    good.write_text('query,positive\n"a, b",p1\nc,p2\n', encoding="utf-8")
    assert set(load_pairs(good).queries.values()) == {"a, b", "c"}
    missing = tmp_path / "bad.tsv"
    missing.write_text("question_x\tgold_passage\na\tb\n", encoding="utf-8")
    with pytest.raises(InputError, match="no query column"):
        load_pairs(missing)
    empty = tmp_path / "empty_field.tsv"
    empty.write_text("query_text\tgold_passage\na\tb\nc\t \n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_pairs(empty)
    assert err.value.line == 3 and "empty passage" in str(err.value)
    ragged = tmp_path / "ragged.tsv"
    ragged.write_text("query_text\tgold_passage\na\tb\tc\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_pairs(ragged)
    assert err.value.line == 2
    with pytest.raises(InputError, match="not found"):
        load_eval(tmp_path / "nope.tsv")


def test_real_msmarco_dev_pairs_and_subsample() -> None:
    data = load_pairs(SHARED / "msmarco_dev_beir.tsv")
    assert data.n_queries == 6980 and data.n_passages == 7433  # SOURCE.md: 7437 rows, repeated queries merged
    small = subsample(data, max_queries=50, max_passages=200, seed=3)
    assert small.n_queries == 50 and small.n_passages == 200
    for q, rel in small.qrels.items():
        assert rel and all(d in small.corpus for d in rel)
    assert subsample(data, 50, 200, seed=3) == small  # seeded
    assert subsample(data, 50, 200, seed=4) != small


def test_subsample_keeps_relevant_passages_even_if_over_budget() -> None:
    data = EvalData(queries={"a": "qa", "b": "qb"}, corpus={"1": "x", "2": "y", "3": "z"},
                    qrels={"a": {"1": 1, "2": 1}, "b": {"3": 1}})
    small = subsample(data, max_queries=1, max_passages=1, seed=0)
    kept = next(iter(small.qrels.values()))
    assert set(small.corpus) == set(kept)


def _triplets() -> pd.DataFrame:
    rows = []
    for i in range(20):
        for src in ("bm25", "llm"):
            rows.append({"query_id": f"q{i}", "query": f"Query number {i}?", "positive": f"pos {i}",
                         "negative": f"{src} neg {i}", "source": src})
    # the same query text under another id (e.g. a file without ids): must not leak either
    rows.append({"query_id": "other", "query": "query NUMBER 3", "positive": "pos 3", "negative": "x",
                 "source": "bm25"})
    return pd.DataFrame(rows)


def test_split_has_no_query_in_both() -> None:
    train, data = split_from_triplets(_triplets(), fraction=0.25, seed=1)
    assert data.n_queries == 6  # ceil(0.25 · 21 query ids)
    eval_keys = {normalise_query(t) for t in data.queries.values()}
    train_keys = set(train["query"].map(normalise_query))
    assert not eval_keys & train_keys
    assert set(data.queries).isdisjoint(set(train["query_id"]))
    # the corpus holds the held-out positives only (no source's negatives)
    assert all(t.startswith("pos ") for t in data.corpus.values())
    again_train, again = split_from_triplets(_triplets(), fraction=0.25, seed=1)
    assert again == data and again_train.equals(train)


def test_leak_guard_counts() -> None:
    t = _triplets()
    data = EvalData(queries={"e1": "query number 3", "e2": "Query number 7?", "e3": "unrelated"},
                    corpus={"d": "p"}, qrels={"e1": {"d": 1}, "e2": {"d": 1}, "e3": {"d": 1}})
    clean, report = remove_eval_leaks(t, data)
    assert report.removed_triplets == 5 and report.removed_queries == 2
    assert report.by_source == {"bm25": 3, "llm": 2}
    assert len(clean) == len(t) - 5
    assert not set(clean["query"].map(normalise_query)) & {"query number 3", "query number 7"}


def test_normalise_query() -> None:
    assert normalise_query("  What are the LIBERAL-arts?? ") == "what are the liberal arts"
    assert normalise_query("Ｃａｆé") == normalise_query("café")


def test_hard_split_adds_own_negatives_and_bm25_neighbours_as_distractors():
    from ecisem_core.downstream.evalsets import hard_split

    rows = []
    for i in range(10):
        rows.append({"query_id": f"q{i}", "query": f"topic{i} question about item{i}", "positive": f"answer item{i}",
                     "negative": f"topic{i} unrelated note {i}", "source": "s"})
    t = pd.DataFrame(rows)
    train, data = hard_split(t, fraction=0.2, seed=0, k=2)
    easy_train, easy = split_from_triplets(t, 0.2, 0)
    assert data.queries == easy.queries and data.qrels == easy.qrels
    assert train.equals(easy_train)
    held = [t[t.query_id == q].iloc[0] for q in data.queries]
    texts = set(data.corpus.values())
    assert all(r["negative"] in texts for r in held)          # each held-out query's own negative
    assert len(data.corpus) > len(easy.corpus) + len(held)     # plus BM25 neighbours from the rest
    assert not set(train["query_id"]) & set(data.queries)
