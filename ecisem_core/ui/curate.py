"""What the "False negatives" and "Annotate" pages compute (pure: no Streamlit import).

    table = flag_table(prep)                                  # triplets + s_qp, s_qn, s_pn + flags
    view = candidates(table, sources=["bm25"], reasons=["relative-margin rule"], min_score=0.3, junk=False)
    store = open_store()                                      # $ECISEM_ANNOTATIONS_DB or data/annotations/…
    batch = store.create_batch(name, batch_items(view.head(50)))
    url = batch_link("http://host:8501/false-negatives", "false-negatives", batch)   # …/annotate?batch=<id>

Everything here calls the core (:mod:`ecisem_core.curation.negatives`, :mod:`~ecisem_core.curation.annotations`,
:mod:`~ecisem_core.curation.exports`, :mod:`~ecisem_core.curation.fn_model`); it only selects, joins and formats, so the pages stay
UI and this module is unit-tested on its own.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from ecisem_core.curation.annotations import VERDICTS, AnnotationStore, item_consensus
from ecisem_core.errors import InputError
from ecisem_core.curation.exports import (
    argilla_records,
    argilla_settings,
    candidate_frame,
    label_studio_config,
    label_studio_tasks,
    read_verdicts_csv,
    write_jsonl,
    write_training_file,
)
from ecisem_core.curation.fn_model import FnModel, labels_from_verdicts, resample, train_fn_model
from ecisem_core.curation.highlight import IdfTable, idf_table
from ecisem_core.curation.negatives import JUNK_PREFIX, SEP, fn_baselines
from ecisem_core.ui.paths import PROJECT_ROOT

# ---------------------------------------------------------------------------------------------------- the store

ANNOTATIONS_ENV = "ECISEM_ANNOTATIONS_DB"
"""Environment variable naming the annotation store (an SQLite file; created on first use)."""
DEFAULT_ANNOTATIONS_DB = PROJECT_ROOT / "data" / "annotations" / "annotations.sqlite"
"""The store when ``ECISEM_ANNOTATIONS_DB`` is not set (``data/annotations/`` is git-ignored)."""


def annotations_path() -> Path:
    """``$ECISEM_ANNOTATIONS_DB`` or :data:`DEFAULT_ANNOTATIONS_DB` (absolute)."""
    value = os.environ.get(ANNOTATIONS_ENV)
    return (Path(value).expanduser() if value else DEFAULT_ANNOTATIONS_DB).resolve()


@functools.lru_cache(maxsize=8)
def _store(path: str) -> AnnotationStore:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return AnnotationStore(path)


def open_store(path: str | Path | None = None) -> AnnotationStore:
    """The annotation store at ``path`` (default :func:`annotations_path`), opened once per process (the store
    object holds only its path: every operation uses its own connection, so sharing it is safe)."""
    return _store(str(Path(path).resolve() if path is not None else annotations_path()))


def try_open_store(path: str | Path | None = None) -> tuple[AnnotationStore | None, str | None]:
    """(store, None), or (None, why it cannot be opened — in words, naming the file and the setting to change)."""
    where = Path(path) if path is not None else annotations_path()
    try:
        return open_store(where), None
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        return None, (f"cannot open the annotation store {where} ({exc}); set {ANNOTATIONS_ENV} to a writable "
                      "file")


# ---------------------------------------------------------------------------------------------------- the list

REASON_LABELS: tuple[str, ...] = (
    "identical to the positive", "encoder prefers the negative", "relative-margin rule",
    "near-duplicate of the positive", "contains the positive's key terms", "cross-encoder prefers the negative",
    "combined evidence",
)
"""False-negative reason kinds (the text of a reason up to its numbers), in the flagger's order."""
JUNK_LABELS: tuple[str, ...] = ("empty text", "very short", "boilerplate", "LLM preamble or refusal",
                                "copy of the positive")
"""Junk reason kinds (shown as ``"junk: <kind>"``)."""
_NUMBERS = re.compile(r"\s*\(.*$")
RANK_COLUMNS = ("fn_score", "fn_model")
"""What the list can be ranked by: the rule-based score, or the learned scorer's probability."""


def reason_kinds(reasons: str) -> list[str]:
    """The kinds of the reasons in one ``fn_reasons`` string (numbers dropped; junk keeps its prefix).

    >>> reason_kinds("relative-margin rule (s_qn 0.71 > s_qp − 0.05·|s_qp| = 0.70); combined evidence (fn_score 0.6)")
    ['relative-margin rule', 'combined evidence']
    >>> reason_kinds("junk: very short (2 words)")
    ['junk: very short']
    """
    return [_NUMBERS.sub("", part).strip() for part in str(reasons or "").split(SEP) if part.strip()]


def flag_table(triplets: pd.DataFrame, s_qp: np.ndarray, s_qn: np.ndarray, s_pn: np.ndarray,
               flags: pd.DataFrame) -> pd.DataFrame:
    """One row per triplet (same order): its columns, the similarities, ``fn_score``/``fn_flag``/``junk_flag``/
    ``fn_reasons`` and ``row`` (its position: the id used by selections). From a ``Prepared``:
    ``flag_table(p.triplets, p.s_qp, p.s_qn, p.s_pn, p.flags)``."""
    t = triplets.reset_index(drop=True)
    f = flags.reset_index(drop=True)
    out = t.assign(s_qp=np.asarray(s_qp, dtype=np.float64), s_qn=np.asarray(s_qn, dtype=np.float64),
                   s_pn=np.asarray(s_pn, dtype=np.float64))
    out = pd.concat([out.drop(columns=[c for c in f.columns if c in out.columns]), f], axis=1)
    out["row"] = np.arange(len(out), dtype=np.int64)
    return out


def reasons_present(table: pd.DataFrame) -> list[str]:
    """Reason kinds that occur among flagged or junk rows, false-negative kinds first, then junk, each in the
    flagger's order (unknown kinds last, sorted)."""
    mask = table["fn_flag"].to_numpy(bool) | table["junk_flag"].to_numpy(bool)
    seen = {k for r in table.loc[mask, "fn_reasons"].unique() for k in reason_kinds(r)}
    order = [*REASON_LABELS, *(JUNK_PREFIX + j for j in JUNK_LABELS)]
    return [k for k in order if k in seen] + sorted(seen - set(order))


def candidates(table: pd.DataFrame, *, sources: Sequence[str] | None = None, reasons: Sequence[str] | None = None,
               min_score: float = 0.0, junk: bool = False, rank_by: str = "fn_score") -> pd.DataFrame:
    """The review list: likely false negatives (``fn_flag`` and score ≥ ``min_score``) and, with ``junk``, junk
    rows that are not flagged (a copy of the positive is both: it is listed as a false negative); optionally only
    some ``sources`` and rows having any of ``reasons`` (kinds of :func:`reason_kinds`); highest ``rank_by`` first
    (ties: source, then row). Adds ``kind`` ("false negative?" / "junk") and ``reasons`` (the list of kinds)."""
    if rank_by not in table.columns:
        raise InputError(f"cannot rank by {rank_by!r}: the table has no such column")
    score = table[rank_by].to_numpy(dtype=np.float64)
    flagged = table["fn_flag"].to_numpy(bool)
    junk_only = table["junk_flag"].to_numpy(bool) & ~flagged  # a copy of the positive is both: listed as FN
    keep = (flagged & (score >= float(min_score))) | (junk_only if junk else False)
    if sources:
        keep &= table["source"].astype(str).isin(set(map(str, sources))).to_numpy()
    out = table.loc[keep].copy()
    kinds = [reason_kinds(r) for r in out["fn_reasons"]]
    if reasons:
        wanted = set(reasons)
        has = np.array([bool(wanted.intersection(k)) for k in kinds], dtype=bool)
        out, kinds = out.loc[has], [k for k, h in zip(kinds, has) if h]
    out["kind"] = np.where(out["fn_flag"].to_numpy(bool), "false negative?", "junk")
    out["reasons"] = kinds
    return out.sort_values([rank_by, "source", "row"], ascending=[False, True, True], kind="stable")


def per_source_summary(table: pd.DataFrame, sources: Sequence[str] | None = None) -> pd.DataFrame:
    """Per source: triplets, flagged as likely false negative, junk, their rates, and (when the data has
    ``fn_label``) the labelled false negatives and how many of them are flagged."""
    t = table if not sources else table[table["source"].astype(str).isin(set(sources))]
    g = t.groupby("source", sort=True)
    out = pd.DataFrame({"triplets": g.size(), "flagged": g["fn_flag"].sum(), "junk": g["junk_flag"].sum()})
    out["flagged_rate"] = out["flagged"] / out["triplets"]
    out["junk_rate"] = out["junk"] / out["triplets"]
    if "fn_label" in t.columns and t["fn_label"].notna().any():
        lab = t["fn_label"].to_numpy(dtype=np.float64) > 0.5
        out["labelled_fn"] = pd.Series(lab, index=t.index).groupby(t["source"]).sum()
        out["labelled_fn_flagged"] = pd.Series(lab & t["fn_flag"].to_numpy(bool), index=t.index).groupby(
            t["source"]).sum()
    return out.reset_index().rename(columns={"index": "source"})


def baselines(table: pd.DataFrame, sources: Sequence[str] | None = None) -> pd.DataFrame | None:
    """fn_score against the s_qn ranking and the margin rules (:func:`ecisem_core.curation.negatives.fn_baselines`) on the
    rows with a ground-truth ``fn_label``; ``None`` when there is none (or only one class)."""
    if "fn_label" not in table.columns:
        return None
    t = table if not sources else table[table["source"].astype(str).isin(set(sources))]
    y = pd.to_numeric(t["fn_label"], errors="coerce")
    known = y.dropna()
    if known.empty or known.nunique() < 2:
        return None
    return fn_baselines(t, y)


# ---------------------------------------------------------------------------------------------------- batches

def batch_items(rows: pd.DataFrame) -> pd.DataFrame:
    """The item columns of the chosen rows, in list order (what :meth:`AnnotationStore.create_batch` stores)."""
    cols = ["query_id", "negative_id", "query", "positive", "negative", "source", "fn_score", "fn_flag",
            "fn_reasons"]
    return rows[[c for c in cols if c in rows.columns]].reset_index(drop=True)


def default_batch_name(rows: pd.DataFrame, now: datetime | None = None) -> str:
    """``"<source(s)> · <n> triplets · <YYYY-MM-DD HH:MM>"``.

    >>> default_batch_name(pd.DataFrame({"source": ["bm25", "bm25"]}), datetime(2025, 1, 2, 3, 4))
    'bm25 · 2 triplets · 2025-01-02 03:04'
    """
    names = sorted(rows["source"].astype(str).unique()) if len(rows) else []
    label = names[0] if len(names) == 1 else f"{len(names)} sources" if names else "empty"
    return f"{label} · {len(rows)} triplets · {(now or datetime.now()).strftime('%Y-%m-%d %H:%M')}"


def unique_pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` without repeats of a (query_id, negative_id) pair (the first kept): sources that mined the same
    negative for the same query share one item — and one verdict, which counts for every row of that pair."""
    if not {"query_id", "negative_id"} <= set(rows.columns):
        return rows
    return rows.loc[~rows.duplicated(["query_id", "negative_id"], keep="first")]


def send_to_batch(store: AnnotationStore, rows: pd.DataFrame, name: str, settings: dict[str, Any] | None = None
                  ) -> int:
    """Create a batch of ``rows`` (in their order, each (query_id, negative_id) pair once); returns its id."""
    rows = unique_pairs(rows)
    if rows.empty:
        raise InputError("nothing to send: select rows in the list (or choose the top of the list)")
    return store.create_batch(name.strip() or default_batch_name(rows), batch_items(rows), settings or {})


def app_base(page_url: str | None, page_path: str) -> str:
    """The app's root URL from the URL of a page (``st.context.url``) and that page's url path ("" when
    unknown: then the result is relative, ``""``).

    >>> app_base("http://h:8501/false-negatives", "false-negatives"), app_base("http://h:8501/", "")
    ('http://h:8501', 'http://h:8501')
    >>> app_base("http://h/app/false-negatives/", "false-negatives"), app_base(None, "x")
    ('http://h/app', '')
    """
    if not page_url:
        return ""
    url = page_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    if page_path and url.endswith("/" + page_path):
        url = url[: -len(page_path) - 1]
    return url


def batch_link(base: str, annotate_path: str, batch_id: int, annotator: str | None = None) -> str:
    """The Annotate page's link for a batch (``…/annotate?batch=<id>[&annotator=<name>]``); relative
    (``/annotate?…``) when ``base`` is "".

    >>> batch_link("http://h:8501", "annotate", 3, "Zoë Li")
    'http://h:8501/annotate?batch=3&annotator=Zo%C3%AB+Li'
    """
    params: dict[str, str] = {"batch": str(int(batch_id))}
    if annotator and annotator.strip():
        params["annotator"] = annotator.strip()
    return f"{base.rstrip('/')}/{annotate_path.strip('/')}?{urlencode(params)}"


def short_time(times: pd.Series) -> pd.Series:
    """ISO-8601 times of the store → ``"YYYY-MM-DD HH:MM:SS"``.

    >>> short_time(pd.Series(["2025-01-02T03:04:05.678901+00:00"])).tolist()
    ['2025-01-02 03:04:05']
    """
    return times.astype(str).str.slice(0, 19).str.replace("T", " ", regex=False)


def batch_options(batches: pd.DataFrame) -> dict[int, str]:
    """batch id → ``"#3 · name · 12 items"`` (newest first)."""
    out = {}
    for rec in batches.sort_values("id", ascending=False).to_dict("records"):
        out[int(rec["id"])] = f"#{int(rec['id'])} · {rec['name']} · {int(rec['n_items'])} items"
    return out


def parse_batch_id(value: Any) -> int | None:
    """A batch id from a URL value (``"3"``, ``["3"]``); ``None`` when absent or not a positive integer.

    >>> parse_batch_id("3"), parse_batch_id(["7"]), parse_batch_id("x"), parse_batch_id(None)
    (3, 7, None, None)
    """
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


# ---------------------------------------------------------------------------------------------------- exports

@dataclass(frozen=True)
class Download:
    """One file to offer: its name, MIME type and a function making its bytes (called only on download)."""

    file_name: str
    mime: str
    make: Callable[[], bytes]

    @property
    def data(self) -> bytes:
        return self.make()


EXPORT_KINDS: dict[str, tuple[str, str, str]] = {
    "csv": ("CSV", ".csv", "text/csv"),
    "jsonl": ("JSONL", ".jsonl", "application/x-ndjson"),
    "label_studio": ("Label Studio tasks", ".label_studio.json", "application/json"),
    "label_studio_config": ("Label Studio config", ".label_config.xml", "application/xml"),
    "argilla": ("Argilla records", ".argilla.jsonl", "application/x-ndjson"),
    "argilla_settings": ("Argilla settings", ".argilla.settings.json", "application/json"),
}
"""Export formats of the review list: key → (button label, file suffix, MIME type)."""


def _jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="ecisem-export-") as tmp:
        path = Path(tmp) / "out.jsonl"
        write_jsonl(records, path)
        return path.read_bytes()


def export_bytes(rows: pd.DataFrame, kind: str) -> bytes:
    """The review list in one of :data:`EXPORT_KINDS` (the same writers as ``ecisem flag``)."""
    out = rows.drop(columns=[c for c in ("reasons", "kind", "row") if c in rows.columns])
    if kind == "csv":
        return candidate_frame(out).to_csv(index=False).encode("utf-8")
    if kind == "jsonl":
        frame = candidate_frame(out)
        return _jsonl_bytes(dict(zip(frame.columns, r)) for r in frame.itertuples(index=False, name=None))
    if kind == "label_studio":
        return json.dumps(label_studio_tasks(out), ensure_ascii=False, indent=1).encode("utf-8")
    if kind == "label_studio_config":
        return label_studio_config().encode("utf-8")
    if kind == "argilla":
        return _jsonl_bytes(argilla_records(out))
    if kind == "argilla_settings":
        return json.dumps(argilla_settings(), indent=2).encode("utf-8")
    raise InputError(f"unknown export {kind!r}; use one of {list(EXPORT_KINDS)}")


def export_download(rows: pd.DataFrame, kind: str, stem: str = "fn_candidates") -> Download:
    """:func:`export_bytes` as a lazy :class:`Download`."""
    if kind not in EXPORT_KINDS:
        raise InputError(f"unknown export {kind!r}; use one of {list(EXPORT_KINDS)}")
    _, suffix, mime = EXPORT_KINDS[kind]
    return Download(stem + suffix, mime, lambda: export_bytes(rows, kind))


def training_download(table: pd.DataFrame, probs: np.ndarray, mode: str, threshold: float, fmt: str = "jsonl",
                      stem: str = "cleaned_training") -> tuple[Download, int]:
    """A cleaned training file (:func:`ecisem_core.curation.fn_model.resample`: junk dropped; likely false negatives
    dropped or down-weighted) as CSV or JSONL (written on download), and how many rows it has."""
    if fmt not in ("csv", "jsonl"):
        raise InputError(f"unknown training-file format {fmt!r} (use csv or jsonl)")
    junk = table["junk_flag"].to_numpy(bool) if "junk_flag" in table.columns else None
    cleaned = resample(table, probs, mode=mode, threshold=threshold, junk=junk)

    def make() -> bytes:
        with tempfile.TemporaryDirectory(prefix="ecisem-train-") as tmp:
            path = Path(tmp) / f"{stem}.{fmt}"
            write_training_file(cleaned, path)
            return path.read_bytes()

    return Download(f"{stem}.{fmt}", "text/csv" if fmt == "csv" else "application/x-ndjson", make), len(cleaned)


# ---------------------------------------------------------------------------------------------------- verdicts in

@dataclass(frozen=True)
class Imported:
    """Result of a verdict import: the batch that received them, how many, and whether the batch is new."""

    batch_id: int
    n_verdicts: int
    created: bool


def read_uploaded_verdicts(data: bytes, file_name: str, default_annotator: str | None = None) -> pd.DataFrame:
    """:func:`ecisem_core.curation.exports.read_verdicts_csv` on uploaded bytes; errors name the file as uploaded."""
    safe = re.sub(r"[^\w.\-+]+", "_", Path(file_name).name).lstrip(".") or "verdicts.csv"
    with tempfile.TemporaryDirectory(prefix="ecisem-verdicts-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            frame = read_verdicts_csv(path, default_annotator=default_annotator or None)
        except InputError as exc:
            raise InputError(exc.problem, Path(file_name).name, exc.line) from None
    frame["file"] = Path(file_name).name
    return frame


def import_verdicts(store: AnnotationStore, verdicts: pd.DataFrame, batch_id: int | None = None,
                    table: pd.DataFrame | None = None, name: str | None = None) -> Imported:
    """Store imported verdicts (all or nothing).

    Into an existing batch (``batch_id``): items are named by ``item_id`` or (``query_id``, ``negative_id``).
    Into a new batch (``batch_id=None``): the items are the rows of ``table`` (the current dataset, flagged)
    named by the verdicts' (``query_id``, ``negative_id``) — every one must be found there.
    """
    if verdicts.empty:
        raise InputError("the file has no verdicts")
    if batch_id is not None:
        return Imported(int(batch_id), store.record_verdicts(int(batch_id), verdicts), False)
    if table is None:
        raise InputError("choose a batch to import into")
    ids = verdicts[["query_id", "negative_id"]].astype("string")
    if ids.isna().any(axis=None):
        bad = verdicts.loc[ids.isna().any(axis=1)].iloc[0]
        raise InputError("a new batch needs query_id and negative_id on every row (item_id names items of an "
                         "existing batch)", bad.get("file"), _line(bad.get("line")))
    keys = table["query_id"].astype(str) + "\x00" + table["negative_id"].astype(str)
    first = pd.Series(np.arange(len(table)), index=keys.to_numpy()).groupby(level=0).first()
    wanted = list(dict.fromkeys(ids["query_id"] + "\x00" + ids["negative_id"]))
    missing = [k for k in wanted if k not in first.index]
    if missing:
        q, n = missing[0].split("\x00")
        rec = verdicts.loc[(ids["query_id"] == q) & (ids["negative_id"] == n)].iloc[0]
        raise InputError(f"no triplet of the current dataset has query_id {q!r} and negative_id {n!r}"
                         + (f" ({len(missing)} such rows)" if len(missing) > 1 else ""),
                         rec.get("file"), _line(rec.get("line")))
    rows = table.iloc[first.loc[wanted].to_numpy()]
    with_ids = verdicts.assign(item_id=pd.array([pd.NA] * len(verdicts), dtype="Int64"))
    batch = store.create_batch(name or f"imported · {len(rows)} triplets", batch_items(rows), {"imported": True})
    return Imported(batch, store.record_verdicts(batch, with_ids), True)


def _line(value: Any) -> int | None:
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


VERDICT_COLUMNS: tuple[str, ...] = ("verdict_id", "item_id", "position", "query_id", "negative_id", "source",
                                    "fn_score", "fn_flag", "annotator", "verdict", "comment", "time", "batch_id")
"""Columns of :func:`all_verdicts` (those of :meth:`AnnotationStore.verdicts` and ``batch_id``)."""
EMPTY_VERDICTS = pd.DataFrame(columns=list(VERDICT_COLUMNS))
"""No verdicts (when there is no store)."""


def all_verdicts(store: AnnotationStore) -> pd.DataFrame:
    """Current verdicts of every batch (with ``batch_id``)."""
    frames = [store.verdicts(int(b)).assign(batch_id=int(b)) for b in store.list_batches()["id"]]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return EMPTY_VERDICTS.copy()
    return pd.concat(frames, ignore_index=True)[list(VERDICT_COLUMNS)]


def verdicts_csv(verdicts: pd.DataFrame) -> bytes:
    """Verdicts in the CSV shape :func:`ecisem_core.curation.exports.read_verdicts_csv` reads back (plus context)."""
    cols = ["item_id", "query_id", "negative_id", "verdict", "annotator", "comment", "source", "fn_score", "time"]
    return verdicts[[c for c in cols if c in verdicts.columns]].to_csv(index=False).encode("utf-8")


# ---------------------------------------------------------------------------------------------------- learned scorer

def label_counts(table: pd.DataFrame, verdicts: pd.DataFrame) -> tuple[int, int]:
    """(false negatives, true negatives) among the dataset's rows by the annotators' consensus."""
    y = labels_from_verdicts(table, verdicts)
    return int(np.sum(y == 1.0)), int(np.sum(y == 0.0))


def verdicts_fingerprint(verdicts: pd.DataFrame) -> str:
    """A cheap key of a verdict set (its verdict ids), to cache a model trained on it."""
    ids = verdicts["verdict_id"].to_numpy(dtype=np.int64) if len(verdicts) else np.zeros(0, np.int64)
    return f"{len(ids)}:{int(ids.sum()) if len(ids) else 0}:{int(ids.max()) if len(ids) else 0}"


def train_from_verdicts(table: pd.DataFrame, verdicts: pd.DataFrame, seed: int = 0) -> FnModel:
    """The learned scorer on the dataset's rows judged by the annotators (raises
    :class:`ecisem_core.curation.fn_model.NotEnoughVerdicts` with how many exist and are needed)."""
    return train_fn_model(table, labels_from_verdicts(table, verdicts), seed=seed)


# ---------------------------------------------------------------------------------------------------- annotating

def batch_idf(items: pd.DataFrame, passages: Iterable[str] = ()) -> IdfTable:
    """IDF over a batch's passages (positives ∪ negatives) and ``passages`` (e.g. the current dataset's: a batch
    of a few items alone makes every word look rare), for highlighting the overlaps that carry evidence."""
    batch = pd.concat([items["positive"], items["negative"]]).astype(str)
    return idf_table(dict.fromkeys([*map(str, passages), *batch]))


def previous_item(store: AnnotationStore, batch_id: int, annotator: str, before: int | None) -> dict[str, Any] | None:
    """The item this annotator answered last before position ``before`` (the last answered one when ``None``),
    with their current verdict and comment; ``None`` when there is none."""
    v = store.verdicts(batch_id)
    mine = v[v["annotator"] == annotator]
    if before is not None:
        mine = mine[mine["position"] < before]
    if mine.empty:
        return None
    last = mine.sort_values("position").iloc[-1]
    items = store.items(batch_id)
    item = items[items["id"] == last["item_id"]].iloc[0].to_dict()
    item.update(current_verdict=last["verdict"], current_comment=last["comment"])
    return item


def annotator_progress(store: AnnotationStore, batch_id: int) -> pd.DataFrame:
    """Per annotator: items judged, of the batch's total, share, counts per verdict, last answer time."""
    total = len(store.items(batch_id))
    v = store.verdicts(batch_id)
    cols = ["annotator", "judged", "total", "share", *VERDICTS, "last"]
    if v.empty:
        return pd.DataFrame(columns=cols)
    counts = pd.crosstab(v["annotator"], v["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    last = v.groupby("annotator")["time"].max().reindex(counts.index)
    out = counts.assign(judged=counts.sum(axis=1), total=total, last=short_time(last))
    out["share"] = out["judged"] / total if total else 0.0
    return out.reset_index()[cols].sort_values(["judged", "annotator"], ascending=[False, True],
                                               kind="stable").reset_index(drop=True)


def item_table(store: AnnotationStore, batch_id: int) -> pd.DataFrame:
    """Per item of the batch: its number (1-based), source, fn_score, negative, each annotator's current verdict in
    words (one column each, "" when not answered), the consensus (false negative / true negative / undecided / —).
    """
    items = store.items(batch_id)
    v = store.verdicts(batch_id)
    base = items[["id", "position", "source", "fn_score", "negative"]].rename(columns={"id": "item_id"})
    base["position"] = base["position"] + 1
    if v.empty:
        return base.assign(consensus="—")
    wide = v.pivot(index="item_id", columns="annotator", values="verdict").apply(
        lambda col: col.map(VERDICT_WORDS)).fillna("")
    cons = item_consensus(v).set_index("item_id")["label"]
    out = base.join(wide, on="item_id")
    out[list(wide.columns)] = out[list(wide.columns)].fillna("")
    label = out["item_id"].map(cons)
    judged = out["item_id"].isin(set(v["item_id"]))
    out["consensus"] = np.select([label == 1.0, label == 0.0, judged], ["false negative", "true negative",
                                                                        "undecided"], "—")
    return out


# ---------------------------------------------------------------------------------------------------- display

VERDICT_WORDS = {"false_negative": "false negative", "true_negative": "true negative", "unsure": "unsure"}
"""How a verdict is shown."""
LABEL_TEXT = {1.0: "false negative", 0.0: "true negative"}
"""How a ground-truth ``fn_label`` is shown."""
LIST_COLUMNS = ("fn_score", "fn_model", "source", "reasons", "query", "negative", "positive", "s_qp", "s_qn", "s_pn",
                "label", "query_id", "negative_id")
"""Columns of the displayed review list, in order (those present)."""


def display_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The review list as shown: :data:`LIST_COLUMNS` (``label`` from ``fn_label`` when the data has labels)."""
    out = rows.copy()
    if "fn_label" in out.columns and out["fn_label"].notna().any():
        out["label"] = out["fn_label"].map(LABEL_TEXT).fillna("")
    return out[[c for c in LIST_COLUMNS if c in out.columns]].reset_index(drop=True)


def page_path(file: str) -> str:
    """The URL path of a registered page file (``"pages/annotate.py"`` → ``"annotate"``)."""
    from ecisem_core.ui.registry import PAGES

    for spec in PAGES:
        if spec.file == file:
            return spec.url_path
    raise KeyError(file)


def triplet_card(query: str, positive: str, negative: str, idf: dict[str, float] | None = None,
                 pills: Sequence[tuple[str, bool]] = (), colour: str | None = None) -> str:
    """HTML card of a triplet with IDF-highlighted overlaps (:func:`ecisem_core.curation.highlight.highlight_triplet`);
    ``pills`` are (text, warn) badges. Every text is escaped."""
    import html

    from ecisem_core.curation.highlight import highlight_triplet

    h = highlight_triplet(query, positive, negative, idf)
    badges = "".join(f'<span class="eci-pill{" warn" if warn else ""}">{html.escape(str(text))}</span>'
                     for text, warn in pills)
    style = f' style="border-left: 4px solid {html.escape(colour, quote=True)}"' if colour else ""
    meta = f'<div class="meta">{badges}</div>' if badges else ""
    return (f'<div class="eci-card"{style}>{meta}'
            f'<div class="lbl">query</div><div class="txt">{h["query"]}</div>'
            f'<div class="lbl">positive (labeled relevant)</div><div class="txt">{h["positive"]}</div>'
            f'<div class="lbl">candidate negative</div><div class="txt">{h["negative"]}</div></div>')
