"""Tests of ecisem_core.curation.exports: CSV/JSONL, Label Studio and Argilla shapes, verdict import, cleaned training file.

Documented shapes the exports are validated against:

* Label Studio tasks import ("Label Studio JSON format", labelstud.io/guide/task_format and /guide/predictions):
  a JSON list of tasks, each ``{"data": {...}}`` whose keys are the ``$variables`` of the labeling config, with
  optional ``"predictions": [{"model_version": str, "score": float, "result": [{"from_name": <control tag name>,
  "to_name": <object tag name>, "type": <control tag type, lower case>, "value": {"choices": [<Choice value>]}}]}]``.
* Argilla 2.x (the ``argilla`` SDK ≥ 2.0): ``rg.Record.from_dict(data)`` reads ``id``, ``fields`` (dict of field
  name → text), ``metadata`` (name → value), ``suggestions`` (question name → ``{"value", "score", "agent"}``, passed
  as ``rg.Suggestion(question_name=name, **value)``), ``responses`` (question → list), ``vectors``; field, question
  and metadata names must be those of the dataset's ``rg.Settings``; a label suggestion's value is one of the
  question's labels and a score lies in [0, 1].
"""
from __future__ import annotations

import json
from pathlib import Path
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.errors import InputError
from ecisem_core.curation.exports import (
    argilla_records,
    argilla_settings,
    export_argilla,
    export_candidates,
    export_cleaned_training,
    export_label_studio,
    label_studio_config,
    label_studio_tasks,
)
from ecisem_core.curation.verdict_csv import read_verdicts_csv


def flagged() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "query_id": ["q1", "q2", "q3"],
            "query": ["who wrote hamlet", "capital of peru", "boiling point"],
            "positive": ["Shakespeare wrote Hamlet.", "Lima is the capital.", "Water boils at 100 °C."],
            "negative": ["Hamlet is by Shakespeare — «yes».", "Cusco was the Inca capital.", "Here are three:"],
            "source": ["llm", "bm25", "llm"],
            "negative_id": ["n1", "n2", "n3"],
            "fn_label": [1.0, np.nan, 0.0],
            "file": ["a.jsonl"] * 3,
            "line": [1, 2, 3],
            "s_qp": [0.8, 0.7, 0.6],
            "s_qn": [0.82, 0.5, 0.2],
            "s_pn": [0.97, 0.6, 0.1],
            "fn_score": [0.93, 0.02, 0.0],
            "fn_flag": [True, False, False],
            "junk_flag": [False, False, True],
            "fn_reasons": ["near-duplicate of the positive", "", "junk: LLM preamble or refusal"],
            "extra": ["x", "y", "z"],
        }
    )


# --------------------------------------------------------------------------------------------------------------
# CSV / JSONL


def test_jsonl_export_is_valid_json_with_nulls_and_unicode(tmp_path):
    path = tmp_path / "c.jsonl"
    assert export_candidates(flagged(), path) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows[0]["negative"] == "Hamlet is by Shakespeare — «yes»." and "«" in lines[0]  # not \\u-escaped
    assert rows[1]["fn_label"] is None and rows[0]["fn_flag"] is True and rows[0]["line"] == 1
    assert list(rows[0]) == ["query_id", "negative_id", "source", "query", "positive", "negative", "fn_score",
                             "fn_flag", "junk_flag", "fn_reasons", "s_qp", "s_qn", "s_pn", "fn_label", "file", "line"]
    assert "extra" not in rows[0]


def test_csv_export_round_trips(tmp_path):
    path = tmp_path / "c.csv"
    export_candidates(flagged(), path)
    back = pd.read_csv(path, keep_default_na=False)
    assert back["negative"].tolist() == flagged()["negative"].tolist()
    assert back["fn_score"].tolist() == [0.93, 0.02, 0.0]
    with pytest.raises(InputError, match="unknown export format"):
        export_candidates(flagged(), tmp_path / "c.xlsx")


# --------------------------------------------------------------------------------------------------------------
# Label Studio


def _config_tags(xml: str) -> tuple[dict[str, str], dict[str, dict], set[str]]:
    root = ET.fromstring(xml)
    assert root.tag == "View"
    objects = {e.get("name"): e.get("value") for e in root.iter("Text")}
    controls = {e.get("name"): {"type": e.tag.lower(), "toName": e.get("toName"),
                                "choices": [c.get("alias") or c.get("value") for c in e.iter("Choice")]}
                for e in root if e.get("toName")}
    variables = {v[1:] for v in objects.values() if v and v.startswith("$")}
    return objects, controls, variables


def test_label_studio_tasks_match_the_documented_shape_and_the_config(tmp_path):
    xml = label_studio_config(with_reasons=True)
    objects, controls, variables = _config_tags(xml)
    assert variables == {"query", "positive", "negative", "fn_reasons"}
    assert controls["verdict"]["choices"] == ["false_negative", "true_negative", "unsure"]
    assert controls["verdict"]["toName"] in objects and controls["comment"]["type"] == "textarea"
    tasks = label_studio_tasks(flagged(), with_reasons=True)
    json.dumps(tasks, allow_nan=False)  # strict JSON: no NaN
    assert isinstance(tasks, list) and len(tasks) == 3
    for task, flag, score in zip(tasks, [True, False, False], [0.93, 0.02, 0.0]):
        assert set(task) == {"data", "predictions"}
        assert variables <= set(task["data"]) and all(isinstance(task["data"][v], str) for v in variables)
        (pred,) = task["predictions"]
        assert pred["model_version"] == "ecisem-fn" and pred["score"] == score
        (res,) = pred["result"]
        assert res["from_name"] in controls and res["to_name"] == controls[res["from_name"]]["toName"]
        assert res["type"] == controls[res["from_name"]]["type"] == "choices"
        assert res["value"]["choices"] == ["false_negative" if flag else "true_negative"]
        assert set(res["value"]["choices"]) <= set(controls["verdict"]["choices"])
    assert tasks[0]["data"]["query_id"] == "q1" and tasks[0]["data"]["fn_score"] == 0.93
    assert "predictions" not in label_studio_tasks(flagged(), predictions=False, with_reasons=True)[0]
    config_path = export_label_studio(flagged(), tmp_path / "ls.json", with_reasons=True)
    assert json.loads((tmp_path / "ls.json").read_text(encoding="utf-8")) == tasks
    assert config_path.read_text(encoding="utf-8") == xml


def test_label_studio_without_flags_or_ids_has_no_predictions_and_empty_strings():
    t = flagged()[["query", "positive", "negative"]]
    (task, *_) = label_studio_tasks(t, with_reasons=True)
    assert set(task) == {"data"} and task["data"]["fn_reasons"] == "" and task["data"]["fn_score"] is None


def test_annotation_exports_hide_the_flaggers_evidence_unless_asked(tmp_path):
    """Label Studio and Argilla files for annotators carry no reasons, FN score or suggested verdict by default
    (the in-app annotator hides them too: they bias the answer)."""
    xml = label_studio_config()
    _, controls, variables = _config_tags(xml)
    assert variables == {"query", "positive", "negative"} and "flagged" not in xml
    assert controls["verdict"]["choices"] == ["false_negative", "true_negative", "unsure"]
    tasks = label_studio_tasks(flagged())
    assert all(set(t) == {"data"} for t in tasks)  # no pre-annotation either
    assert all(not {"fn_reasons", "fn_score"} & set(t["data"]) for t in tasks)
    assert tasks[0]["data"]["query_id"] == "q1" and tasks[0]["data"]["source"] == "llm"
    export_label_studio(flagged(), tmp_path / "ls.json")
    text = (tmp_path / "ls.json").read_text() + (tmp_path / "ls.label_config.xml").read_text()
    assert "near-duplicate" not in text and "0.93" not in text
    settings = argilla_settings()
    assert [f["name"] for f in settings["fields"]] == ["query", "positive", "negative"]
    assert "fn_score" not in {m["name"] for m in settings["metadata"]}
    for rec in argilla_records(flagged()):
        assert set(rec["fields"]) == {"query", "positive", "negative"} and rec["suggestions"] == {}
        assert "fn_score" not in rec["metadata"]
    export_argilla(flagged(), tmp_path / "a.jsonl")
    assert "near-duplicate" not in (tmp_path / "a.jsonl").read_text() + (tmp_path / "a.settings.json").read_text()


# --------------------------------------------------------------------------------------------------------------
# Argilla 2.x

RECORD_KEYS = {"id", "fields", "metadata", "suggestions", "responses", "vectors", "_server_id"}
SUGGESTION_KEYS = {"value", "score", "agent", "type"}


def test_argilla_records_match_record_from_dict_and_the_settings(tmp_path):
    settings = argilla_settings(with_reasons=True)
    field_names = {f["name"] for f in settings["fields"]}
    questions = {q["name"]: q for q in settings["questions"]}
    metadata = {m["name"]: m for m in settings["metadata"]}
    records = argilla_records(flagged(), with_reasons=True)
    json.dumps(records, allow_nan=False)
    assert len(records) == 3 and len({r["id"] for r in records}) == 3
    for rec in records:
        assert set(rec) <= RECORD_KEYS
        assert set(rec["fields"]) == field_names and all(isinstance(v, str) and v for v in rec["fields"].values())
        assert set(rec["metadata"]) <= set(metadata)
        for name, value in rec["metadata"].items():
            if metadata[name]["type"] == "float":
                assert isinstance(value, float) and metadata[name]["min"] <= value <= metadata[name]["max"]
            else:
                assert isinstance(value, str)
        for qname, sug in rec["suggestions"].items():
            assert qname in questions and set(sug) <= SUGGESTION_KEYS
            assert sug["value"] in questions[qname]["labels"]
            assert 0.0 <= sug["score"] <= 1.0 and sug["agent"] == "ecisem-fn"
        assert rec["responses"] == {} and rec["vectors"] == {}
    assert records[0]["id"] == "q1|n1" and records[0]["suggestions"]["verdict"]["value"] == "false_negative"
    assert records[2]["suggestions"]["verdict"] == {"value": "true_negative", "agent": "ecisem-fn", "score": 0.0}
    assert records[1]["fields"]["reasons"] == "—"  # Argilla refuses empty required text fields
    settings_path = export_argilla(flagged(), tmp_path / "argilla.jsonl", with_reasons=True)
    assert json.loads(settings_path.read_text()) == settings
    assert [json.loads(x) for x in (tmp_path / "argilla.jsonl").read_text().splitlines()] == records


def test_argilla_records_accepted_by_the_sdk_when_installed():
    rg = pytest.importorskip("argilla", reason="the argilla SDK is not a dependency; shape checked above")
    for rec in argilla_records(flagged()):
        r = rg.Record.from_dict(rec)
        assert r.fields["query"] == rec["fields"]["query"]


# --------------------------------------------------------------------------------------------------------------
# verdict import


def test_read_verdicts_csv_by_item_and_by_triplet_ids(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text(
        "item_id,query_id,negative_id,verdict,annotator,comment\n"
        "1,,,FN,alice,\"multi\nline comment\"\n"
        "\n"
        ",q2,n2,true negative,bob,\n"
        ",q3,n3,unsure,bob,hmm\n",
        encoding="utf-8",
    )
    v = read_verdicts_csv(path)
    assert v["verdict"].tolist() == ["false_negative", "true_negative", "unsure"]
    assert v["item_id"].tolist()[0] == 1 and pd.isna(v["item_id"].iloc[1])
    assert v["comment"].tolist() == ["multi\nline comment", "", "hmm"]
    assert v["line"].tolist() == [2, 5, 6]  # the record starting on line 2 spans 2 lines; line 4 is blank


@pytest.mark.parametrize(
    "content, line, message",
    [
        ("query_id,negative_id,verdict,annotator\nq1,n1,maybe,alice\n", 2, "unknown verdict 'maybe'"),
        ("query_id,negative_id,verdict,annotator\nq1,n1,fn,alice\nq2,,tn,bob\n", 3, "names no item"),
        ("item_id,verdict,annotator\nabc,fn,alice\n", 2, "not an integer"),
        ("item_id,verdict,annotator\n1,fn,\n", 2, "empty annotator"),
        ("item_id,verdict,annotator\n1,fn,a,extra\n", 2, "more fields"),
        ("item_id,annotator\n1,alice\n", 1, "no 'verdict' column"),
        ("verdict,annotator\nfn,alice\n", 1, "item_id"),
    ],
)
def test_read_verdicts_csv_bad_rows_name_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_verdicts_csv(path)
    assert err.value.line == line and err.value.path == str(path) and message in str(err.value)


def test_read_verdicts_csv_default_annotator_and_missing_file(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("item_id,verdict\n3,tn\n", encoding="utf-8")
    assert read_verdicts_csv(path, default_annotator="me")["annotator"].tolist() == ["me"]
    with pytest.raises(InputError, match="annotator"):
        read_verdicts_csv(path)
    with pytest.raises(InputError, match="cannot read"):
        read_verdicts_csv(tmp_path / "missing.csv")


def test_imported_verdicts_land_in_the_store(tmp_path):
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("import", flagged())
    first = int(store.items(b).loc[0, "id"])
    path = tmp_path / "v.csv"
    path.write_text(f"item_id,query_id,negative_id,verdict,annotator\n{first},,,fn,alice\n,q2,n2,tn,alice\n"
                    ",q9,n9,tn,alice\n", encoding="utf-8")
    rows = read_verdicts_csv(path)
    with pytest.raises(InputError) as err:
        store.record_verdicts(b, rows)
    assert err.value.line == 4 and "q9" in str(err.value)
    assert store.record_verdicts(b, rows.iloc[:2]) == 2
    assert store.verdicts(b)["verdict"].tolist() == ["false_negative", "true_negative"]


# --------------------------------------------------------------------------------------------------------------
# cleaned training file


def test_cleaned_training_file_drop_and_weight(tmp_path):
    t = flagged()
    dropped = export_cleaned_training(t, tmp_path / "clean.jsonl")  # default: fn_score ≥ 0.5 dropped, junk dropped
    assert dropped["negative_id"].tolist() == ["n2"]
    rows = [json.loads(x) for x in (tmp_path / "clean.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == [{"query_id": "q2", "negative_id": "n2", "source": "bm25", "query": "capital of peru",
                     "positive": "Lima is the capital.", "negative": "Cusco was the Inca capital."}]
    weighted = export_cleaned_training(t, tmp_path / "clean.csv", mode="weight")
    back = pd.read_csv(tmp_path / "clean.csv")
    assert back["negative_id"].tolist() == ["n1", "n2"]
    assert back["weight"].tolist() == pytest.approx([0.07, 1.0])
    assert weighted["weight"].tolist() == pytest.approx([0.07, 1.0])
    probs = np.array([0.1, 0.9, 0.1])  # a learned scorer's probabilities override fn_score
    assert export_cleaned_training(t, tmp_path / "c2.jsonl", probs=probs)["negative_id"].tolist() == ["n1"]
    with pytest.raises(InputError):
        export_cleaned_training(t.drop(columns=["fn_score"]), tmp_path / "c3.jsonl")
    with pytest.raises(InputError, match="format"):
        export_cleaned_training(t, tmp_path / "c.parquet")


# --------------------------------------------------------------------------------------------------------------
# `ecisem flag` end to end (TF-IDF/LSA encoder: offline and fast)


def _tiny_data(path):
    rows = []
    topics = [("who wrote hamlet", "William Shakespeare wrote the play Hamlet around 1600."),
              ("capital of peru", "Lima is the capital and largest city of Peru."),
              ("boiling point of water", "At sea level water boils at 100 degrees Celsius."),
              ("tallest mountain", "Mount Everest is the highest mountain above sea level.")]
    for i, (q, p) in enumerate(topics):
        rows.append({"query": q, "positive": p, "negative": f"An unrelated note number {i} about gardening tools.",
                     "source": "bm25"})
        rows.append({"query": q, "positive": p, "negative": p, "source": "llm"})  # planted: copy of the positive
        rows.append({"query": q, "positive": p, "negative": "Here are three HARD NEGATIVE passages:", "source": "llm"})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_flag_command_end_to_end(tmp_path, capsys):
    from ecisem_core.cli import main

    data = _tiny_data(tmp_path / "tiny.jsonl")
    out = tmp_path / "cand.jsonl"
    assert main(["flag", str(data), "--out", str(out), "--encoder", "tfidf", "--no-cache", "--quiet"]) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    copies = [r for r in rows if r["negative"] == r["positive"]]
    preambles = [r for r in rows if r["negative"].startswith("Here are")]
    assert len(copies) == 4 and all(r["fn_score"] == 1.0 and r["fn_flag"] for r in copies)
    assert all("identical to the positive" in r["fn_reasons"] for r in copies)
    assert len(preambles) == 4 and all("junk: LLM preamble or refusal" in r["fn_reasons"] for r in preambles)
    assert {"s_qp", "s_qn", "s_pn", "query_id", "negative_id"} <= set(rows[0])
    # --no-junk, --source, Label Studio output
    ls = tmp_path / "ls.json"
    assert main(["flag", str(data), "--out", str(ls), "--format", "label-studio", "--source", "llm", "--no-junk",
                 "--encoder", "tfidf", "--no-cache", "--quiet"]) == 0
    tasks = json.loads(ls.read_text(encoding="utf-8"))
    assert len(tasks) == 4 and all(set(t) == {"data"} and "fn_reasons" not in t["data"] for t in tasks)
    assert "fn_reasons" not in (tmp_path / "ls.label_config.xml").read_text()
    assert main(["flag", str(data), "--out", str(ls), "--format", "label-studio", "--source", "llm", "--no-junk",
                 "--with-reasons", "--encoder", "tfidf", "--no-cache", "--quiet"]) == 0
    tasks = json.loads(ls.read_text(encoding="utf-8"))
    assert len(tasks) == 4 and all(t["predictions"][0]["result"][0]["value"]["choices"] == ["false_negative"]
                                   for t in tasks)
    assert "fn_reasons" in (tmp_path / "ls.label_config.xml").read_text()
    # bad input → exit 2 with a message
    assert main(["flag", str(data), "--out", str(out), "--source", "nope", "--encoder", "tfidf", "--quiet"]) == 2
    assert "unknown source" in capsys.readouterr().err


@pytest.mark.parametrize("export", ["label_studio", "argilla", "jsonl", "csv"])
def test_an_export_that_fails_half_way_leaves_the_previous_file_whole(tmp_path, monkeypatch, export):
    """Exports are whole or absent (ecisem_core.io.atomic): a failure while writing keeps the previous file and
    leaves no temporary file behind."""
    import ecisem_core.curation.exports as ex

    target = tmp_path / {"label_studio": "tasks.json", "argilla": "records.jsonl", "jsonl": "c.jsonl",
                         "csv": "c.csv"}[export]
    run = {"label_studio": lambda: export_label_studio(flagged(), target),
           "argilla": lambda: export_argilla(flagged(), target),
           "jsonl": lambda: export_candidates(flagged(), target),
           "csv": lambda: export_candidates(flagged(), target)}[export]
    run()
    before = target.read_bytes()
    files_before = sorted(p.name for p in tmp_path.iterdir())
    calls = {"n": 0}
    real_dumps = ex.json.dumps

    def failing_dumps(*a, **kw):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("disk full half-way")
        return real_dumps(*a, **kw)

    monkeypatch.setattr(ex.json, "dumps", failing_dumps)
    if export == "label_studio":
        real_write = Path.write_text

        def half_write(self, text, *a, **kw):
            real_write(self, text[: len(text) // 2], *a, **kw)
            raise RuntimeError("disk full half-way")

        monkeypatch.setattr(Path, "write_text", half_write)
    if export == "csv":
        monkeypatch.setattr(pd.DataFrame, "to_csv", lambda self, path, **kw: (open(path, "w").write("half"),
                                                                              1 / 0))
    with pytest.raises((RuntimeError, ZeroDivisionError)):
        run()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files_before
