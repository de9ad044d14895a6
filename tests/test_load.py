"""Tests of ecisem_core.io.load: every format from tiny files, the real external files, and bad input."""
from __future__ import annotations

import gzip
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecisem_core.errors import InputError
from ecisem_core.hashing import short_id
from ecisem_core.io.load import TRIPLET_COLUMNS, detect_format, load_triplets, read_triplets

Q1, P1, N1 = "what is a cat", "A cat is a small domesticated feline.", "Dogs are loyal pets that bark."
Q2, P2, N2 = "capital of france", "Paris is the capital of France.", "Lyon is a large city in France."


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def save_to_disk(folder: Path, columns: dict[str, list], shards: int = 1) -> Path:
    """What datasets.Dataset.save_to_disk writes: Arrow IPC *stream* shards + state.json + dataset_info.json."""
    folder.mkdir(parents=True)
    table = pa.table(columns)
    names = []
    bounds = np.linspace(0, table.num_rows, shards + 1).astype(int)
    for i in range(shards):
        name = f"data-{i:05d}-of-{shards:05d}.arrow"
        with pa.OSFile(str(folder / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
            w.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]))
        names.append(name)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names],
                                                    "_fingerprint": "x", "_split": None}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": {c: {"dtype": "string"} for c in columns}}))
    return folder


# ------------------------------------------------------------------------------------------ flat formats


def test_csv_canonical_columns_ids_source_and_lines(tmp_path):
    f = write(tmp_path / "bm25.csv", f"query,positive,negative,score\n{Q1},{P1},{N1},0.5\n{Q2},{P2},{N2},0.25\n")
    res = read_triplets(f)
    t = res.triplets
    assert list(t.columns) == list(TRIPLET_COLUMNS) + ["score"]
    assert t["query"].tolist() == [Q1, Q2]
    assert t["negative"].tolist() == [N1, N2]
    assert t["source"].tolist() == ["bm25", "bm25"]
    assert t["query_id"].tolist() == [short_id("q", Q1), short_id("q", Q2)]
    assert t["negative_id"].iloc[0] == short_id("n", N1) and t["negative_id"].iloc[0].startswith("n")
    assert len(t["query_id"].iloc[0]) == 13
    assert t["fn_label"].isna().all() and t["fn_label"].dtype == float
    assert t["line"].tolist() == [2, 3] and t["line"].dtype == np.int64
    assert t["file"].tolist() == [str(f)] * 2
    assert t["score"].tolist() == [0.5, 0.25]
    assert res.report.rows_read == res.report.rows_kept == 2 and res.report.rows_excluded == 0
    assert res.report.files[0].format == "csv"


@pytest.mark.parametrize("names", [("anchor", "pos", "neg"), ("query_text", "gold_passage", "hard_negative"),
                                   ("query", "pos", "neg"), ("Query", "Positive", "Negative")])
def test_column_aliases_jsonl(tmp_path, names):
    f = jsonl(tmp_path / "a.jsonl", [dict(zip(names, (Q1, P1, N1))), dict(zip(names, (Q2, P2, N2)))])
    t = read_triplets(f).triplets
    assert t[["query", "positive", "negative"]].values.tolist() == [[Q1, P1, N1], [Q2, P2, N2]]
    assert t["line"].tolist() == [1, 2]
    assert not set(names) & set(t.columns[9:])  # consumed, not duplicated as extras


def test_tsv_with_header_and_ids(tmp_path):
    f = write(tmp_path / "mined.tsv", f"qid\tquery\tpositive\tnegative\tneg_id\n7\t{Q1}\t{P1}\t{N1}\td1\n"
                                      f"8\t{Q2}\t{P2}\t{N2}\t\n")
    t = read_triplets(f).triplets
    assert t["query_id"].tolist() == ["7", "8"]
    assert t["negative_id"].tolist() == ["d1", short_id("n", N2)]  # empty id falls back to the text hash


def test_parquet_with_source_ids_and_labels(tmp_path):
    df = pd.DataFrame({"query": [Q1, Q2, Q1], "positive": [P1, P2, P1], "negative": [N1, N2, N2],
                       "source": ["bm25", "dense", "dense"], "query_id": [1, 2, 1],
                       "is_false_negative": ["yes", "False", None], "extra": [1, 2, 3]})
    f = tmp_path / "x.parquet"
    df.to_parquet(f)
    res = read_triplets(f, source="ignored")
    t = res.triplets
    assert t["source"].tolist() == ["bm25", "dense", "dense"]  # the column wins over source=
    assert t["query_id"].tolist() == ["1", "2", "1"]
    assert t["fn_label"].iloc[:2].tolist() == [1.0, 0.0] and math.isnan(t["fn_label"].iloc[2])
    assert t["line"].tolist() == [1, 2, 3]  # 1-based data row
    assert t["extra"].tolist() == [1, 2, 3]
    assert res.report.per_source == {"bm25": 1, "dense": 2}
    assert res.report.files[0].format == "parquet"


@pytest.mark.parametrize("col", ["fn_label", "is_false_negative", "false_negative"])
def test_label_columns_map_to_float(tmp_path, col):
    rows = [{"query": Q1, "positive": P1, "negative": f"neg {i}", col: v}
            for i, v in enumerate([True, False, 1, 0, "yes", "no", "TRUE", "False", None, "maybe"])]
    res = read_triplets(jsonl(tmp_path / "l.jsonl", rows))
    got = res.triplets["fn_label"].tolist()
    assert got[:8] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert math.isnan(got[8]) and math.isnan(got[9])
    assert any("unrecognised" in n and "'maybe'" in n for n in res.report.notes)


def test_source_argument_and_stem_and_several_files(tmp_path):
    a = write(tmp_path / "bm25.csv", f"query,positive,negative\n{Q1},{P1},{N1}\n{Q2},{P2},{N2}\n")
    b = jsonl(tmp_path / "llm.jsonl", [{"query": Q1, "positive": P1, "negative": N1},
                                       {"query": Q1, "positive": P1, "negative": N1, "note": "dup"}])
    res = read_triplets([a, b])
    t = res.triplets
    assert t["source"].tolist() == ["bm25", "bm25", "llm", "llm"]
    assert t["file"].tolist() == [str(a)] * 2 + [str(b)] * 2
    assert list(t.columns) == list(TRIPLET_COLUMNS) + ["note"]
    assert res.report.per_source == {"bm25": 2, "llm": 2}
    # the same triplet in two sources is not a duplicate; twice in one source is (counted, kept)
    assert res.report.duplicates == 1 and res.report.duplicates_by_source == {"llm": 1}
    assert len(t) == 4
    assert read_triplets(a, source="mine").triplets["source"].unique().tolist() == ["mine"]


def test_plain_folder_reads_its_supported_files(tmp_path):
    write(tmp_path / "a.csv", f"query,positive,negative\n{Q1},{P1},{N1}\n")
    jsonl(tmp_path / "b.jsonl", [{"query": Q2, "positive": P2, "negative": N2}])
    write(tmp_path / "README.md", "not data")
    assert read_triplets(tmp_path).report.per_source == {"a": 1, "b": 1}


def test_headerless_triples_tsv_auto_and_forced(tmp_path):
    f = write(tmp_path / "triples.train.tsv", f"{Q1}\t{P1}\t{N1}\n{Q2}\t{P2}\t{N2}\n")
    res = read_triplets(f)
    assert res.triplets[["query", "positive", "negative"]].values.tolist() == [[Q1, P1, N1], [Q2, P2, N2]]
    assert res.triplets["line"].tolist() == [1, 2]
    assert res.report.files[0].format == "triples"
    short = write(tmp_path / "short.tsv", "a cat\ta feline\ta dog\n")  # looks like a header …
    with pytest.raises(InputError, match="fmt='triples'"):
        read_triplets(short)
    assert read_triplets(short, fmt="triples").triplets["negative"].tolist() == ["a dog"]  # … unless forced


def test_unquoted_tsv_keeps_quote_characters(tmp_path):
    neg = '"Quoted start of a passage that never closes its quote. More text here.'
    f = write(tmp_path / "t.tsv", f"{Q1}\t{P1}\t{neg}\n{Q2}\t{P2}\t{N2}\n")
    t = read_triplets(f).triplets
    assert t["negative"].tolist() == [neg, N2]


def test_pandas_written_quoted_tsv_round_trips(tmp_path):
    df = pd.DataFrame({"query": [Q1, Q2], "positive": ['He said "hi"\tthen left', P2], "negative": [N1, N2]})
    f = tmp_path / "q.tsv"
    df.to_csv(f, sep="\t", index=False)
    t = read_triplets(f).triplets
    assert t["positive"].tolist() == ['He said "hi"\tthen left', P2]


def test_csv_multiline_field_and_blank_lines_give_record_start_lines(tmp_path):
    f = write(tmp_path / "m.csv", f'query,positive,negative\n{Q1},"line one\nline two",{N1}\n\n{Q2},{P2},{N2}\n')
    t = read_triplets(f).triplets
    assert t["positive"].iloc[0] == "line one\nline two"
    assert t["line"].tolist() == [2, 5]


def test_json_array_and_gzip_and_extension_sniffing(tmp_path):
    arr = write(tmp_path / "a.json", json.dumps([{"query": Q1, "positive": P1, "negative": N1}]))
    assert read_triplets(arr).triplets["negative"].tolist() == [N1]
    gz = tmp_path / "t.tsv.gz"
    gz.write_bytes(gzip.compress(f"{Q1}\t{P1}\t{N1}\n".encode()))
    res = read_triplets(gz)
    assert res.triplets["source"].tolist() == ["t"] and res.triplets["query"].tolist() == [Q1]
    tab_csv = write(tmp_path / "tabs.csv", f"query\tpositive\tnegative\n{Q1}\t{P1}\t{N1}\n")
    assert detect_format(tab_csv) == "tsv" and len(read_triplets(tab_csv).triplets) == 1
    txt = write(tmp_path / "x.txt", json.dumps({"query": Q1, "positive": P1, "negative": N1}) + "\n")
    assert detect_format(txt) == "jsonl"


def test_negative_k_columns_expand_in_tables(tmp_path):
    f = write(tmp_path / "k.csv", f"query,positive,negative_1,negative_2\n{Q1},{P1},{N1},{N2}\n{Q2},{P2},{N2},\n")
    res = read_triplets(f)
    t = res.triplets
    assert t["negative"].tolist() == [N1, N2, N2]
    assert t["line"].tolist() == [2, 2, 3]
    assert res.report.exclusions["empty negative"].count == 1  # the blank negative_2 of row 2 is reported


def test_input_file_and_line_columns_are_kept_renamed(tmp_path):
    f = jsonl(tmp_path / "o.jsonl", [{"query": Q1, "positive": P1, "negative": N1, "file": "old.csv", "line": 9}])
    t = read_triplets(f).triplets
    assert t["file"].iloc[0] == str(f) and t["line"].iloc[0] == 1
    assert t["orig_file"].iloc[0] == "old.csv" and t["orig_line"].iloc[0] == 9


# ---------------------------------------------------------------------------------------- grouped JSONL


def test_flagembedding_expands_per_negative_with_scores(tmp_path):
    rows = [
        {"query": Q1, "pos": [P1], "neg": [N1, N2], "pos_scores": [0.9], "neg_scores": [0.5, 0.4], "type": "x"},
        {"query": Q2, "pos": [P2, "second positive"], "neg": [N1], "pos_scores": [0.8, 0.7], "neg_scores": [0.3]},
        {"query": "lonely query", "pos": [P1], "neg": []},
    ]
    res = read_triplets(jsonl(tmp_path / "fe.jsonl", rows))
    t = res.triplets
    assert t[["query", "positive", "negative"]].values.tolist() == [[Q1, P1, N1], [Q1, P1, N2], [Q2, P2, N1]]
    assert t["neg_score"].tolist() == [0.5, 0.4, 0.3]
    assert t["pos_score"].tolist() == [0.9, 0.9, 0.8]
    assert t["line"].tolist() == [1, 1, 2]
    assert "pos" not in t.columns and "neg_scores" not in t.columns and t["type"].iloc[0] == "x"
    rep = res.report
    assert rep.multi_positive_queries == 1 and rep.extra_positives == 1
    assert rep.exclusions["query without negatives"].count == 1
    assert rep.exclusions["query without negatives"].examples[0]["line"] == 3
    assert rep.files[0].records == 3 and rep.rows_read == 4 and rep.rows_kept == 3


def test_tevatron_passages_titles_and_docids(tmp_path):
    rows = [{"query_id": "101", "query": Q1,
             "positive_passages": [{"docid": "p1", "title": "Cats", "text": P1},
                                   {"docid": "p9", "title": "", "text": "other"}],
             "negative_passages": [{"docid": "d1", "title": "-", "text": N1},
                                   {"docid": "d2", "title": "France", "text": N2}]}]
    res = read_triplets(jsonl(tmp_path / "tev.jsonl", rows))
    t = res.triplets
    assert t["query_id"].tolist() == ["101", "101"]
    assert t["positive"].tolist() == [f"Cats {P1}"] * 2
    assert t["negative"].tolist() == [N1, f"France {N2}"]  # title "-" is Tevatron's empty title
    assert t["negative_id"].tolist() == ["d1", "d2"]
    assert t["positive_id"].tolist() == ["p1", "p1"]
    assert res.report.multi_positive_queries == 1


def test_grouped_lists_in_parquet(tmp_path):
    pq.write_table(pa.table({"query": [Q1, Q2], "pos": [[P1, "p1b"], [P2]], "neg": [[N1, N2], [N1]],
                             "neg_scores": [[0.5, 0.4], [0.3]]}), tmp_path / "fe.parquet")
    res = read_triplets(tmp_path / "fe.parquet")
    t = res.triplets
    assert t[["query", "positive", "negative"]].values.tolist() == [[Q1, P1, N1], [Q1, P1, N2], [Q2, P2, N1]]
    assert t["neg_score"].tolist() == [0.5, 0.4, 0.3] and t["line"].tolist() == [1, 1, 2]
    assert res.report.multi_positive_queries == 1
    passage = pa.struct([("docid", pa.string()), ("title", pa.string()), ("text", pa.string())])
    pq.write_table(pa.table({"query": [Q1],
                             "positive_passages": pa.array([[{"docid": "p", "title": "", "text": P1}]],
                                                           pa.list_(passage)),
                             "negative_passages": pa.array([[{"docid": "d", "title": "T", "text": N1}]],
                                                           pa.list_(passage))}), tmp_path / "tev.parquet")
    t = read_triplets(tmp_path / "tev.parquet").triplets
    assert t[["positive", "negative", "negative_id"]].values.tolist() == [[P1, f"T {N1}", "d"]]


def test_categorical_text_columns_from_pandas_parquet(tmp_path):
    df = pd.DataFrame({"query": [Q1, Q1], "positive": [P1, P1], "negative": [N1, N2]}).astype("category")
    df.to_parquet(tmp_path / "c.parquet")
    t = read_triplets(tmp_path / "c.parquet").triplets
    assert t["negative"].tolist() == [N1, N2] and t["query"].dtype == "str"


def test_grouped_score_length_mismatch_names_line(tmp_path):
    rows = [{"query": Q1, "pos": [P1], "neg": [N1], "neg_scores": [1.0]},
            {"query": Q2, "pos": [P2], "neg": [N1, N2], "neg_scores": [1.0]}]
    with pytest.raises(InputError, match="neg_scores has 1 values but neg has 2") as err:
        read_triplets(jsonl(tmp_path / "bad.jsonl", rows))
    assert err.value.line == 2


# ------------------------------------------------------------------------------- sentence-transformers


def test_sentence_transformers_save_to_disk_negative_k(tmp_path):
    folder = save_to_disk(tmp_path / "st-mined", {"anchor": [Q1, Q2], "positive": [P1, P2],
                                                  "negative_1": [N1, N2], "negative_2": [N2, N1]}, shards=2)
    res = read_triplets(folder)
    t = res.triplets
    assert t[["query", "negative"]].values.tolist() == [[Q1, N1], [Q1, N2], [Q2, N2], [Q2, N1]]
    assert t["source"].unique().tolist() == ["st-mined"]
    assert res.report.files[0].format == "hf_disk" and res.report.files[0].records == 2


def test_sentence_transformers_dataset_dict(tmp_path):
    root = tmp_path / "triplets"
    save_to_disk(root / "train", {"anchor": [Q1], "positive": [P1], "negative": [N1]})
    save_to_disk(root / "dev", {"anchor": [Q2], "positive": [P2], "negative": [N2]})
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "dev"]}))
    t = read_triplets(root).triplets
    assert t["query"].tolist() == [Q1, Q2]
    assert t["source"].tolist() == ["triplets", "triplets"]
    assert t["file"].tolist() == [str(root / "train"), str(root / "dev")]


# --------------------------------------------------------------------------------------------- bad input


def test_malformed_json_line_is_named(tmp_path):
    f = write(tmp_path / "b.jsonl", json.dumps({"query": Q1, "positive": P1, "negative": N1}) + "\n\n{oops\n")
    with pytest.raises(InputError, match=r"line 3: malformed JSON") as err:
        read_triplets(f)
    assert err.value.line == 3 and err.value.path == str(f)


def test_missing_column_names_it_and_lists_found(tmp_path):
    f = write(tmp_path / "m.csv", f"query,positive,score\n{Q1},{P1},1\n")
    with pytest.raises(InputError) as err:
        read_triplets(f)
    msg = str(err.value)
    assert "missing required column(s) negative" in msg and "['query', 'positive', 'score']" in msg


def test_empty_nan_and_non_text_fields_are_reported_with_lines(tmp_path):
    rows = [{"query": Q1, "positive": P1, "negative": N1},
            {"query": Q1, "positive": P1, "negative": "   "},
            {"query": Q2, "positive": None, "negative": N2},
            {"query": Q2, "positive": P2, "negative": float("nan")},
            {"query": 42, "positive": P2, "negative": N2},
            {"query": Q2, "positive": P2, "negative": "nan"},
            {"query": "", "positive": "", "negative": ""}]
    res = read_triplets(jsonl(tmp_path / "e.jsonl", rows))
    ex = res.report.exclusions
    assert res.triplets["line"].tolist() == [1]
    assert {k: v.count for k, v in ex.items()} == {
        "empty negative": 1, "missing positive": 1, "missing negative": 1, "non-text query": 1,
        "placeholder negative": 1, "empty query": 1}
    assert ex["empty negative"].examples == [{"file": str(tmp_path / "e.jsonl"), "line": 2, "value": "'   '"}]
    assert ex["non-text query"].examples[0]["line"] == 5
    assert res.report.rows_read == 7 and res.report.rows_kept == 1 and res.report.rows_excluded == 6
    summary = res.report.summary()
    assert "6 excluded" in summary and "line 2" in summary
    assert json.loads(json.dumps(res.report.to_dict()))["exclusions"]["empty query"]["count"] == 1


def test_csv_empty_field_and_parquet_null_are_excluded(tmp_path):
    f = write(tmp_path / "e.csv", f"query,positive,negative\n{Q1},{P1},\n{Q2},{P2},{N2}\n")
    res = read_triplets(f)
    assert res.report.exclusions["empty negative"].examples[0]["line"] == 2 and len(res.triplets) == 1
    pq.write_table(pa.table({"query": [Q1, None], "positive": [P1, P2], "negative": [N1, N2]}), tmp_path / "n.parquet")
    res = read_triplets(tmp_path / "n.parquet")
    assert res.report.exclusions["missing query"].examples[0]["line"] == 2


def test_all_rows_excluded_is_an_error(tmp_path):
    f = jsonl(tmp_path / "all.jsonl", [{"query": Q1, "positive": P1, "negative": ""}])
    with pytest.raises(InputError, match="all 1 rows were excluded"):
        read_triplets(f)


def test_latin1_bytes_are_a_wrong_encoding_error_with_line(tmp_path):
    f = write(tmp_path / "l.csv", f"query,positive,negative\n{Q1},{P1},{N1}\n{Q2},café au lait,{N2}\n", "latin-1")
    with pytest.raises(InputError, match="not valid utf-8 text.*Latin-1") as err:
        read_triplets(f)
    assert err.value.line == 3
    assert read_triplets(f, encoding="latin-1").triplets["positive"].iloc[1] == "café au lait"


def test_bom_and_crlf_csv_loads_cleanly(tmp_path):
    f = tmp_path / "w.csv"
    f.write_bytes(b"\xef\xbb\xbf" + f"query,positive,negative\r\n{Q1},{P1},{N1}\r\n{Q2},{P2},{N2}\r\n".encode())
    t = read_triplets(f).triplets
    assert t[["query", "positive", "negative"]].values.tolist() == [[Q1, P1, N1], [Q2, P2, N2]]
    assert t["line"].tolist() == [2, 3]
    j = tmp_path / "w.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + (json.dumps({"query": Q1, "positive": P1, "negative": N1}) + "\r\n").encode())
    assert read_triplets(j).triplets["negative"].tolist() == [N1]


def test_not_parquet_empty_unknown_and_missing_files(tmp_path):
    with pytest.raises(InputError, match="not a Parquet file"):
        read_triplets(write(tmp_path / "fake.parquet", "query,positive,negative\n"))
    for name, content in [("e.csv", ""), ("e.jsonl", "\n \n"), ("e.tsv", "\ufeff")]:
        with pytest.raises(InputError, match="file is empty"):
            read_triplets(write(tmp_path / name, content))
    with pytest.raises(InputError, match="only a header"):
        read_triplets(write(tmp_path / "h.csv", "query,positive,negative\n"))
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match="unknown format"):
        read_triplets(tmp_path / "blob.bin")
    with pytest.raises(InputError, match="file not found"):
        read_triplets(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="unknown format 'xml'"):
        read_triplets(tmp_path / "h.csv", fmt="xml")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="no supported files"):
        read_triplets(tmp_path / "empty_dir")


def test_malformed_csv_row_and_utf16_and_id_only_triples(tmp_path):
    f = write(tmp_path / "bad.csv", f"query,positive,negative\n{Q1},{P1},{N1}\n{Q2},{P2},{N2},extra\n")
    with pytest.raises(InputError, match="malformed CSV") as err:
        read_triplets(f)
    assert err.value.line == 3
    u = tmp_path / "u.csv"
    u.write_bytes("query,positive,negative\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        read_triplets(u)
    with pytest.raises(InputError, match="id-only"):
        read_triplets(write(tmp_path / "ids.tsv", "1185869\t59219\t7067032\n"))


def test_load_triplets_warns_once_when_rows_excluded(tmp_path, caplog):
    f = jsonl(tmp_path / "w.jsonl", [{"query": Q1, "positive": P1, "negative": N1},
                                     {"query": Q1, "positive": P1, "negative": ""}])
    with caplog.at_level(logging.WARNING, logger="ecisem_core.io.load"):
        t = load_triplets(f)
    assert isinstance(t, pd.DataFrame) and len(t) == 1
    records = [r for r in caplog.records if r.name == "ecisem_core.io.load"]
    assert len(records) == 1 and "1 excluded (empty negative 1)" in records[0].getMessage()
    assert "\n" not in records[0].getMessage()


# ------------------------------------------------------------------------------------------- real files

EXTERNAL = Path(__file__).parents[1].parent / "shared/data/external"


@pytest.fixture(scope="module")
def external() -> Path:
    if not EXTERNAL.is_dir():
        pytest.skip(f"real example files not found at {EXTERNAL}")
    return EXTERNAL


def test_real_bm25_train_csv(external):
    res = read_triplets(external / "llm-enhanced-dpr/bm25_train.csv")
    t = res.triplets
    assert len(t) == 1000 and res.report.rows_excluded == 0
    assert list(t.columns) == list(TRIPLET_COLUMNS)
    assert t["query"].iloc[0] == "what are the liberal arts?"
    assert t["positive"].iloc[0].startswith("liberal arts. 1. the academic course")
    assert t["line"].iloc[0] == 2 and t["line"].iloc[-1] == 1001
    assert t["source"].unique().tolist() == ["bm25_train"]


def test_real_llm_generated_negatives_jsonl(external):
    t = read_triplets(external / "llm-enhanced-dpr/llm_generated_negatives.jsonl").triplets
    assert len(t) == 2995 and t["query"].nunique() == 1000
    assert t["negative_num"].value_counts().to_dict() == {1: 1000, 2: 998, 3: 997}
    assert t["negative"].iloc[0] == "Here are three HARD NEGATIVE passages that meet the requirements:"


def test_real_hard_negatives_final_tsv(external):
    t = read_triplets(external / "llm-enhanced-dpr/hard_negatives_final.tsv").triplets
    assert len(t) == 3662 and t["query"].nunique() == 1000
    assert int(t["negative_num"].isna().sum()) == 667  # the BM25 negatives labelled HARD have no number
    assert t["line"].iloc[-1] == 3663


def test_real_bge_example_msmarco(external):
    f = external / "flagembedding/bge_example_msmarco.jsonl"
    res = read_triplets(f)
    t = res.triplets
    rows = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(t) == 250 and t["query"].nunique() == 10
    np.testing.assert_allclose(t["neg_score"].to_numpy(), np.concatenate([r["neg_scores"] for r in rows]))
    assert t["negative"].tolist()[:25] == rows[0]["neg"]
    assert t["pos_score"].iloc[0] == rows[0]["pos_scores"][0]
    assert t["line"].value_counts().to_dict() == {i: 25 for i in range(1, 11)}
    assert {"prompt", "type"} <= set(t.columns)
    assert res.report.multi_positive_queries == 0


def test_real_llara_and_bge_share_queries(external):
    llara = read_triplets(external / "flagembedding/llara_toy_finetune_msmarco.jsonl").triplets
    bge = read_triplets(external / "flagembedding/bge_example_msmarco.jsonl").triplets
    assert len(llara) == 330 and llara["query"].nunique() == 11
    assert len(set(llara["query"]) & set(bge["query"])) == 10
    assert llara["neg_score"].between(-1, 20).all()  # reranker-logit scale


def test_real_splade_headerless_triples(external):
    res = read_triplets(external / "splade-toy/triples_train_small_first100.tsv")
    t = res.triplets
    assert len(t) == 100 and res.report.files[0].format == "triples"
    assert t["query"].nunique() == 100 and t["negative"].nunique() == 46
    assert t["query"].iloc[0] == "is a little caffeine ok during pregnancy"
    assert t["line"].tolist() == list(range(1, 101))


def test_real_files_together(external):
    res = read_triplets([external / "llm-enhanced-dpr/bm25_train.csv",
                         external / "llm-enhanced-dpr/llm_generated_negatives.jsonl",
                         external / "splade-toy/triples_train_small_first100.tsv"])
    assert res.report.per_source == {"bm25_train": 1000, "llm_generated_negatives": 2995,
                                     "triples_train_small_first100": 100}
    assert len(res.triplets) == 4095 and res.triplets.index.equals(pd.RangeIndex(4095))
    assert "negative_num" in res.triplets.columns  # extras of one file are kept (NaN elsewhere)
