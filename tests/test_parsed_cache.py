"""The disk cache of parsed inputs (ecisem_core/io/parsed_cache.py): a hit is the parse, exactly; anything that
could make it differ (other bytes, another path, another reader, a damaged entry) parses again."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ecisem_core.confine import confined_to
from ecisem_core.errors import InputError
from ecisem_core.io import parsed_cache
from ecisem_core.io.load import read_triplets
from ecisem_core.io.parsed_cache import read_triplets_cached, report_from_json, report_to_json
from ecisem_core.io.report import Exclusion, FileReport, LoadReport

ROWS = [
    {"query": "what is bm25", "positive": "a ranking function", "negative": "a car", "source": "a"},
    {"query": "what is dpr", "positive": "dense passage retrieval", "negative": "", "source": "a"},  # excluded
    {"query": "what is colbert", "positive": "late interaction", "negative": "a bird", "source": "b",
     "fn_label": 1},
]


def write(path, rows=ROWS):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def entries(folder):
    return sorted(p.suffix for p in folder.iterdir()) if folder.exists() else []


def no_parse(*a, **k):
    raise AssertionError("parsed again")


def test_hit_equals_the_parse_without_parsing(tmp_path, monkeypatch):
    f, cache = write(tmp_path / "t.jsonl"), tmp_path / "cache"
    first = read_triplets_cached(f, cache)
    ref = read_triplets(str(f))
    assert first.report.rows_excluded == 1 and first.report == ref.report
    assert entries(cache) == [".arrow", ".json"]
    monkeypatch.setattr(parsed_cache, "read_triplets", no_parse)
    hit = read_triplets_cached(f, cache)
    pd.testing.assert_frame_equal(hit.triplets, ref.triplets, check_exact=True)
    assert list(hit.triplets.dtypes) == list(ref.triplets.dtypes)
    assert hit.report == ref.report and hit.report.headline() == ref.report.headline()


def test_changed_bytes_parse_again_and_replace_the_entry(tmp_path):
    f, cache = write(tmp_path / "t.jsonl"), tmp_path / "cache"
    read_triplets_cached(f, cache)
    write(f, ROWS[:1])
    again = read_triplets_cached(f, cache)
    assert len(again.triplets) == 1 and again.report.rows_excluded == 0
    assert entries(cache) == [".arrow", ".json"]  # one entry per path: the old one is gone


def test_same_bytes_elsewhere_and_a_changed_reader_miss(tmp_path, monkeypatch):
    f, cache = write(tmp_path / "t.jsonl"), tmp_path / "cache"
    read_triplets_cached(f, cache)
    g = write(tmp_path / "u.jsonl")  # the path is in the table ("file") and the report
    assert set(read_triplets_cached(g, cache).triplets["file"]) == {str(g)}
    monkeypatch.setattr(parsed_cache, "reader_fingerprint", lambda: "another reader")
    calls = []
    real = parsed_cache.read_triplets
    monkeypatch.setattr(parsed_cache, "read_triplets", lambda p: calls.append(p) or real(p))
    read_triplets_cached(f, cache)
    assert calls == [str(f)]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "report"])
def test_damaged_entry_is_parsed_again(tmp_path, damage):
    f, cache = write(tmp_path / "t.jsonl"), tmp_path / "cache"
    read_triplets_cached(f, cache)
    arrow = next(cache.glob("*.arrow"))
    if damage == "truncate":
        arrow.write_bytes(arrow.read_bytes()[:100])
    elif damage == "garbage":
        arrow.write_bytes(b"not arrow at all")
    else:
        next(cache.glob("*.json")).write_text('{"files": 3}', encoding="utf-8")
    again = read_triplets_cached(f, cache)
    ref = read_triplets(str(f))
    pd.testing.assert_frame_equal(again.triplets, ref.triplets, check_exact=True)
    assert again.report == ref.report


def test_entry_that_does_not_read_back_equal_is_not_kept(tmp_path, monkeypatch):
    f, cache = write(tmp_path / "t.jsonl"), tmp_path / "cache"
    monkeypatch.setattr(parsed_cache, "report_to_json",
                        lambda r: report_to_json(r).replace('"duplicates": 0', '"duplicates": 7'))
    res = read_triplets_cached(f, cache)
    assert res.report.duplicates == 0
    assert entries(cache) == []


def test_unwritable_cache_still_reads(tmp_path):
    f = write(tmp_path / "t.jsonl")
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the folder should be")
    assert len(read_triplets_cached(f, blocker).triplets) == 2


def test_folder_input_is_not_cached(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    write(d / "a.jsonl")
    cache = tmp_path / "cache"
    assert len(read_triplets_cached(d, cache).triplets) == 2
    assert entries(cache) == []


def test_parse_errors_are_the_parsers(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"query": "q", "positive": "p", "negative": "n"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_triplets_cached(f, tmp_path / "cache")
    assert "line 2" in str(exc.value)
    assert entries(tmp_path / "cache") == []


def test_confinement_is_checked_before_reading(tmp_path):
    outside = write(tmp_path / "t.jsonl")
    root = tmp_path / "root"
    root.mkdir()
    with confined_to(root), pytest.raises(InputError):
        read_triplets_cached(outside, tmp_path / "cache")


def test_report_json_round_trip():
    rep = LoadReport(files=[FileReport("a.csv", "csv", 3, 4, 2)],
                     exclusions={"empty negative": Exclusion("empty negative", 2, [{"file": "a.csv", "line": 3,
                                                                                   "value": "ünïcode"}])},
                     duplicates=1, duplicates_by_source={"a": 1}, multi_positive_queries=2, extra_positives=3,
                     per_source={"a": 2}, notes=["a note"])
    assert report_from_json(report_to_json(rep)) == rep
