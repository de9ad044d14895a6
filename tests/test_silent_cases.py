"""Silent wrong results made correct or clear (issue 14): reused query ids, same-stem files from different
folders, a hybrid of a source with itself, settings that make every ECI_sem 0."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ecisem_core.cli import main
from ecisem_core.downstream.hybrid import add_hybrids
from ecisem_core.errors import InputError
from ecisem_core.io.load import read_triplets


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_reused_query_id_gets_distinct_ids_with_a_note(tmp_path):
    rows = [{"query_id": "7", "query": f"question {i % 3}", "positive": "p", "negative": f"n{i}"} for i in range(6)]
    res = read_triplets(_jsonl(tmp_path / "a.jsonl", rows))
    t = res.triplets
    assert t.groupby("query_id")["query"].nunique().max() == 1
    assert dict(zip(t["query"], t["query_id"])) == {"question 0": "7", "question 1": "7#2", "question 2": "7#3"}
    assert any("query_id" in n and "'7'" in n for n in res.report.notes)
    assert any("query_id" in n for n in res.report.to_dict()["notes"])


def test_the_same_query_under_one_id_in_two_files_is_left_alone(tmp_path):
    rows = [{"query_id": "1", "query": "same", "positive": "p", "negative": "n"}]
    res = read_triplets([_jsonl(tmp_path / "a.jsonl", rows), _jsonl(tmp_path / "b.jsonl", rows)])
    assert set(res.triplets["query_id"]) == {"1"} and not res.report.notes


def test_same_stem_in_two_folders_gives_two_sources(tmp_path):
    rows = [{"query": "q", "positive": "p", "negative": "n"}]
    a = _jsonl(tmp_path / "bm25" / "train.jsonl", rows)
    b = _jsonl(tmp_path / "dense" / "train.jsonl", rows)
    res = read_triplets([a, b])
    assert list(res.triplets["source"]) == ["bm25/train", "dense/train"]
    assert any("'bm25/train'" in n for n in res.report.notes)
    deeper = _jsonl(tmp_path / "x" / "bm25" / "train.jsonl", rows)
    names = set(read_triplets([a, deeper]).triplets["source"])
    assert len(names) == 2 and all(n.endswith("bm25/train") for n in names)
    assert set(read_triplets([a, b], source="mine").triplets["source"]) == {"mine"}   # named by the caller
    assert set(read_triplets([a]).triplets["source"]) == {"train"}                     # nothing to tell apart


def test_a_hybrid_of_a_source_with_itself_is_refused():
    t = pd.DataFrame({"query": ["q"] * 2, "positive": ["p"] * 2, "negative": ["a", "b"], "source": ["A", "B"]})
    with pytest.raises(InputError, match="distinct"):
        add_hybrids(t, ["A+A"])
    assert len(add_hybrids(t, ["A+B"])) == 4


def test_settings_that_zero_every_score_warn(tmp_path, capsys):
    rows = [{"query": f"apple question {i}", "positive": f"apple answer {i} pie",
             "negative": f"{'pear' if i % 2 else 'apple'} tart {i}", "source": "s1" if i % 3 else "s2"}
            for i in range(30)]
    data = _jsonl(tmp_path / "x.jsonl", rows)
    out = tmp_path / "o"
    assert main(["score", str(data), "--encoder", "tfidf", "--out", str(out), "--quiet", "--bootstrap", "5",
                 "--alpha", "1000"]) == 0
    assert "warning: every source has ECI_sem 0" in capsys.readouterr().err
    assert "every source has ECI_sem 0" in json.loads((out / "settings.json").read_text())["warning"]
    assert main(["score", str(data), "--encoder", "tfidf", "--out", str(out), "--quiet", "--bootstrap", "5"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert "warning" not in json.loads((out / "settings.json").read_text())
