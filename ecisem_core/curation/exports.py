"""Exports of flagged triplets (CSV, JSONL, Label Studio, Argilla), verdict import from CSV, cleaned training files.

Shapes written here, as the tools document them:

* **Label Studio** (tasks import, "Basic Label Studio JSON format"): a JSON list of tasks ``{"data": {...},
  "predictions": [{"model_version", "score", "result": [{"from_name", "to_name", "type": "choices",
  "value": {"choices": [...]}}]}]}``; every ``$name`` the labeling config uses is a key of ``data``, and each
  prediction's ``from_name``/``to_name`` are the names of a control tag and an object tag of that config
  (:func:`label_studio_config`).
* **Argilla 2.x** records as dicts accepted by ``rg.Record.from_dict`` (and so by ``dataset.records.log`` after
  conversion): ``{"id", "fields": {...}, "metadata": {...}, "suggestions": {question: {"value", "score",
  "agent"}}, "responses": {}, "vectors": {}}``, with the dataset settings to create first
  (:func:`argilla_settings`: text fields query/positive/negative, a label question ``verdict``, a text
  question ``comment``, metadata source and ids).

The annotation exports (Label Studio, Argilla) leave out the flagger's evidence — why a triplet was flagged, its
FN score, the suggested verdict — unless ``with_reasons=True``: annotators who see it are biased towards it. The
review list (CSV, JSONL) is the researcher's and keeps it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from ecisem_core.curation.verdicts import VERDICTS
from ecisem_core.errors import InputError
from ecisem_core.io.atomic import write_file_atomically
from ecisem_core.io.csvsafe import safe_csv
from ecisem_core.curation.fn_model import resample

EXPORT_COLUMNS: tuple[str, ...] = (
    "query_id", "negative_id", "source", "query", "positive", "negative", "fn_score", "fn_flag", "junk_flag",
    "fn_reasons", "s_qp", "s_qn", "s_pn", "fn_label", "file", "line",
)
"""Columns written by :func:`export_candidates` (those the table has, in this order)."""
TRAINING_COLUMNS: tuple[str, ...] = ("query_id", "negative_id", "source", "query", "positive", "negative", "weight")
"""Columns of a cleaned training file (``weight`` only in "weight" mode)."""
MODEL_VERSION: str = "ecisem-fn"
"""Name given to our predictions/suggestions (Label Studio ``model_version``, Argilla ``agent``)."""
VERDICT_QUESTION: str = "verdict"
"""Name of the verdict control (Label Studio ``Choices``) / question (Argilla label question)."""
COMMENT_QUESTION: str = "comment"
"""Name of the free-text comment control / question."""
VERDICT_TITLES: dict[str, str] = {
    "false_negative": "False negative (relevant: answers the query)",
    "true_negative": "True negative (not relevant)",
    "unsure": "Unsure",
}
"""What annotators see for each verdict."""


# ---------------------------------------------------------------------------------------------------------------
# plain values


def _plain(value: Any) -> Any:
    """A JSON-safe Python value: numpy scalars → Python, NaN/NA → None."""
    if value is None:
        return None
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame, columns: Iterable[str]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in frame.columns]
    return [{c: _plain(v) for c, v in zip(cols, row)} for row in frame[cols].itertuples(index=False, name=None)]


def candidate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The export columns (:data:`EXPORT_COLUMNS`) the frame has, in order."""
    return frame[[c for c in EXPORT_COLUMNS if c in frame.columns]]


# ---------------------------------------------------------------------------------------------------------------
# CSV / JSONL


def write_jsonl(records: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """One JSON object per line (UTF-8, non-ASCII kept); returns the number of lines."""
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for rec in records:
                fh.write(json.dumps({k: _plain(v) for k, v in rec.items()}, ensure_ascii=False, allow_nan=False)
                         + "\n")
                n += 1

    write_file_atomically(path, write)
    return n


def export_candidates(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> int:
    """Write flagged triplets (a triplet table joined with :func:`~ecisem_core.curation.fn_score.flag_triplets`) as
    ``csv`` or ``jsonl`` (``fmt`` defaults to the file suffix); returns rows written."""
    fmt = (fmt or Path(path).suffix.lstrip(".")).lower()
    out = candidate_frame(frame)
    if fmt == "csv":
        write_file_atomically(path, lambda tmp: safe_csv(out).to_csv(tmp, index=False, encoding="utf-8"))
        return len(out)
    if fmt in ("jsonl", "json"):
        return write_jsonl(_records(out, out.columns), path)
    raise InputError(f"unknown export format {fmt!r} (use csv or jsonl)", path)


# ---------------------------------------------------------------------------------------------------------------
# Label Studio


def label_studio_config(with_reasons: bool = False) -> str:
    """Labeling config (XML) matching :func:`label_studio_tasks`: the three texts (and, ``with_reasons``, why the
    triplet was flagged), a single-choice ``verdict`` (hotkeys f / t / u) on the negative, and an optional
    comment. The reasons are left out by default: seeing the flagger's evidence biases annotators."""
    choices = "\n".join(
        f"    <Choice value={quoteattr(v)} hint={quoteattr(VERDICT_TITLES[v])} "
        f"hotkey={quoteattr(v[0])}/>"
        for v in VERDICTS
    )
    return (
        "<View>\n"
        '  <Header value="Query"/>\n'
        '  <Text name="query" value="$query"/>\n'
        '  <Header value="Labeled positive"/>\n'
        '  <Text name="positive" value="$positive"/>\n'
        '  <Header value="Candidate negative: does it answer the query?"/>\n'
        '  <Text name="negative" value="$negative"/>\n'
        + ('  <Header value="Why it was flagged"/>\n'
           '  <Text name="fn_reasons" value="$fn_reasons"/>\n' if with_reasons else "")
        + f'  <Choices name="{VERDICT_QUESTION}" toName="negative" choice="single" showInline="true" '
        'required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        f'  <TextArea name="{COMMENT_QUESTION}" toName="negative" rows="2" maxSubmissions="1" '
        'placeholder="Comment (optional)"/>\n'
        "</View>\n"
    )


LABEL_STUDIO_DATA: tuple[str, ...] = (
    "query", "positive", "negative", "fn_reasons", "query_id", "negative_id", "source", "fn_score",
)
"""Keys of each Label Studio task's ``data`` with the flagger's evidence (:data:`FLAGGER_EVIDENCE`)."""
FLAGGER_EVIDENCE: tuple[str, ...] = ("fn_reasons", "fn_score")
"""What an annotation export leaves out unless asked for (``with_reasons``): why the triplet was flagged and the
flagger's score — and the flagger's suggested verdict (Label Studio predictions, Argilla suggestions)."""


def label_studio_tasks(frame: pd.DataFrame, predictions: bool = True, with_reasons: bool = False
                       ) -> list[dict[str, Any]]:
    """Label Studio tasks, one per triplet. With ``with_reasons`` the flagger's evidence
    (:data:`FLAGGER_EVIDENCE`) is in each task's data and, with ``predictions`` too, our verdict suggestion
    (false_negative when ``fn_flag`` else true_negative, ``score`` = fn_score) is a pre-annotation; without it
    the tasks hold the texts, ids and source only."""
    keys = LABEL_STUDIO_DATA if with_reasons else tuple(k for k in LABEL_STUDIO_DATA if k not in FLAGGER_EVIDENCE)
    predictions = predictions and with_reasons
    frame = frame.copy()
    for col in LABEL_STUDIO_DATA:
        if col not in frame.columns:
            frame[col] = "" if col != "fn_score" else np.nan
    tasks = []
    flags = frame["fn_flag"].to_numpy(dtype=bool) if "fn_flag" in frame.columns else None
    for k, data in enumerate(_records(frame, keys)):
        data = {key: ("" if v is None and key != "fn_score" else v) for key, v in data.items()}
        task: dict[str, Any] = {"data": data}
        if predictions and flags is not None:
            pred: dict[str, Any] = {
                "model_version": MODEL_VERSION,
                "result": [
                    {
                        "from_name": VERDICT_QUESTION,
                        "to_name": "negative",
                        "type": "choices",
                        "value": {"choices": ["false_negative" if flags[k] else "true_negative"]},
                    }
                ],
            }
            if data.get("fn_score") is not None:
                pred["score"] = float(data["fn_score"])
            task["predictions"] = [pred]
        tasks.append(task)
    return tasks


def export_label_studio(frame: pd.DataFrame, path: str | Path, predictions: bool = True,
                        with_reasons: bool = False) -> Path:
    """Write ``path`` (tasks JSON) and, beside it, ``<stem>.label_config.xml``; returns the config path."""
    path = Path(path)
    text = json.dumps(label_studio_tasks(frame, predictions, with_reasons), ensure_ascii=False, indent=1)
    config_path = path.with_name(path.stem + ".label_config.xml")
    write_file_atomically(config_path,
                          lambda tmp: tmp.write_text(label_studio_config(with_reasons), encoding="utf-8"))
    write_file_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return config_path


# ---------------------------------------------------------------------------------------------------------------
# Argilla 2.x


def argilla_settings(with_reasons: bool = False) -> dict[str, Any]:
    """Dataset settings the records of :func:`argilla_records` need, as plain data. With Argilla 2.x::

        s = argilla_settings()
        settings = rg.Settings(
            fields=[rg.TextField(name=f["name"], title=f["title"]) for f in s["fields"]],
            questions=[rg.LabelQuestion(name="verdict", labels=s["questions"][0]["labels"]),
                       rg.TextQuestion(name="comment", required=False)],
            metadata=[rg.TermsMetadataProperty(name="source"),
                      rg.FloatMetadataProperty(name="fn_score", min=0.0, max=1.0)],
        )
        dataset = rg.Dataset(name="ecisem-fn", settings=settings); dataset.create()
        dataset.records.log([rg.Record.from_dict(r) for r in argilla_records(table)])
    """
    fields = [
        {"name": "query", "title": "Query", "type": "text"},
        {"name": "positive", "title": "Labeled positive", "type": "text"},
        {"name": "negative", "title": "Candidate negative", "type": "text"},
    ]
    if with_reasons:
        fields.append({"name": "reasons", "title": "Why it was flagged", "type": "text"})
    metadata = [{"name": "source", "type": "terms"}]
    if with_reasons:
        metadata.append({"name": "fn_score", "type": "float", "min": 0.0, "max": 1.0})
    return {
        "fields": fields,
        "questions": [
            {"name": VERDICT_QUESTION, "type": "label_selection", "labels": dict(VERDICT_TITLES), "required": True},
            {"name": COMMENT_QUESTION, "type": "text", "required": False},
        ],
        "metadata": metadata + [
            {"name": "query_id", "type": "terms"},
            {"name": "negative_id", "type": "terms"},
        ],
    }


def argilla_records(frame: pd.DataFrame, with_reasons: bool = False) -> list[dict[str, Any]]:
    """Argilla 2.x record dicts (``rg.Record.from_dict`` shape), one per triplet.

    ``id`` = ``"<query_id>|<negative_id>"`` (else the row position), text fields, metadata (source, ids). With
    ``with_reasons`` also the flagger's evidence: a ``reasons`` field, ``fn_score`` metadata and a suggestion for
    ``verdict`` (false_negative when ``fn_flag`` else true_negative; score fn_score, agent
    :data:`MODEL_VERSION`); without it annotators see nothing of the flagger.
    """
    out = []
    cols = ["query", "positive", "negative", "fn_reasons", "source", "fn_score", "fn_flag", "query_id",
            "negative_id"]
    for k, rec in enumerate(_records(frame, cols)):
        qid, nid = rec.get("query_id"), rec.get("negative_id")
        rid = f"{qid}|{nid}" if qid is not None and nid is not None else str(k)
        keys = ("source", "fn_score", "query_id", "negative_id") if with_reasons else ("source", "query_id",
                                                                                        "negative_id")
        metadata = {key: rec[key] for key in keys if rec.get(key) is not None}
        for key in ("source", "query_id", "negative_id"):
            if key in metadata:
                metadata[key] = str(metadata[key])
        record: dict[str, Any] = {
            "id": rid,
            "fields": {
                "query": str(rec.get("query") or ""),
                "positive": str(rec.get("positive") or ""),
                "negative": str(rec.get("negative") or ""),
            },
            "metadata": metadata,
            "suggestions": {},
            "responses": {},
            "vectors": {},
        }
        if with_reasons:
            record["fields"]["reasons"] = str(rec.get("fn_reasons") or "—")
        if with_reasons and rec.get("fn_flag") is not None:
            suggestion: dict[str, Any] = {
                "value": "false_negative" if rec["fn_flag"] else "true_negative",
                "agent": MODEL_VERSION,
            }
            if rec.get("fn_score") is not None:
                suggestion["score"] = float(rec["fn_score"])
            record["suggestions"][VERDICT_QUESTION] = suggestion
        out.append(record)
    return out


def export_argilla(frame: pd.DataFrame, path: str | Path, with_reasons: bool = False) -> Path:
    """Write the records as JSONL at ``path`` and the settings beside it (``<stem>.settings.json``)."""
    path = Path(path)
    settings_path = path.with_name(path.stem + ".settings.json")
    settings = json.dumps(argilla_settings(with_reasons), indent=2)
    write_file_atomically(settings_path, lambda tmp: tmp.write_text(settings, encoding="utf-8"))
    write_jsonl(argilla_records(frame, with_reasons), path)
    return settings_path


# ---------------------------------------------------------------------------------------------------------------
# cleaned training file


def write_training_file(frame: pd.DataFrame, path: str | Path) -> int:
    """Write a (cleaned) training file: :data:`TRAINING_COLUMNS` the frame has, CSV or JSONL by suffix."""
    out = frame[[c for c in TRAINING_COLUMNS if c in frame.columns]]
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        # texts kept exactly as they are (a training file, not a sheet): no formula neutralising here
        write_file_atomically(path, lambda tmp: out.to_csv(tmp, index=False, encoding="utf-8"))
        return len(out)
    if suffix in (".jsonl", ".json"):
        return write_jsonl(_records(out, out.columns), path)
    raise InputError(f"unknown training-file format {suffix!r} (use .csv or .jsonl)", path)


def export_cleaned_training(
    table: pd.DataFrame,
    path: str | Path,
    probs: np.ndarray | None = None,
    mode: str = "drop",
    threshold: float = 0.5,
) -> pd.DataFrame:
    """Resample a triplet table (:func:`ecisem_core.curation.fn_model.resample`) and write it; returns what was written.

    ``probs``: per-row FN probabilities (the learned scorer's); default the table's ``fn_score``. Junk rows
    (``junk_flag``) are always dropped.
    """
    if probs is None:
        if "fn_score" not in table.columns:
            raise InputError("no FN probabilities: pass probs or flag the table first (fn_score column)")
        probs = table["fn_score"].to_numpy(dtype=np.float64)
    junk = table["junk_flag"].to_numpy(dtype=bool) if "junk_flag" in table.columns else None
    cleaned = resample(table, probs, mode=mode, threshold=threshold, junk=junk)
    write_training_file(cleaned, path)
    return cleaned
