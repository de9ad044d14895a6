"""What the "False negatives" and "Annotate" pages lay out (pure: no Streamlit import).

    table = flag_table(prep)                                  # triplets + s_qp, s_qn, s_pn + flags + reason codes
    view = candidates(table, sources=["bm25"], reasons=["relative-margin rule"], min_score=0.3, junk=False)
    store = open_store()                                      # $ECISEM_ANNOTATIONS_DB or data/annotations/…
    batch = send_to_batch(store, view.head(50), name)
    url = batch_link("http://host:8501/false-negatives", "false-negatives", batch)   # …/annotate?batch=<id>

The logic is in the core: the flags and reasons (:mod:`ecisem_core.curation.fn_score`,
:mod:`~ecisem_core.curation.reasons`), the store and the review workflow (:mod:`~ecisem_core.curation.annotations`,
:mod:`~ecisem_core.curation.review`, re-exported here for the pages), exports (:mod:`~ecisem_core.curation.exports`)
and the learned scorer (:mod:`~ecisem_core.curation.fn_model`). This module selects, joins and formats, so the pages
stay UI and it is unit-tested on its own.
"""
from __future__ import annotations

import html
import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from ecisem_core.curation.baselines import fn_baselines
from ecisem_core.curation.exports import (
    argilla_records,
    argilla_settings,
    candidate_frame,
    label_studio_config,
    label_studio_tasks,
    write_jsonl,
    write_training_file,
)
from ecisem_core.curation.fn_model import resample
from ecisem_core.curation.highlight import IdfTable, highlight_triplet, idf_table
from ecisem_core.curation.reasons import (
    REASON_BY_CODE,
    REASONS,
    kinds_of,
    reason_code,
    reason_code_column,
    reason_codes,
)
from ecisem_core.curation.review import (  # re-exported: the pages call them as curate.<name>
    ANNOTATIONS_ENV,
    DEFAULT_ANNOTATIONS_DB,
    EMPTY_VERDICTS,
    VERDICT_COLUMNS,
    Imported,
    all_verdicts,
    annotations_path,
    annotator_progress,
    batch_items,
    cv_auc_history,
    default_batch_name,
    import_verdicts,
    item_table,
    label_counts,
    open_store,
    previous_item,
    queued_keys,
    read_uploaded_verdicts,
    send_to_batch,
    short_time,
    train_from_verdicts,
    try_open_store,
    unique_pairs,
    verdicts_csv,
    verdicts_fingerprint,
)
from ecisem_core.curation.verdicts import VERDICT_WORDS
from ecisem_core.errors import InputError
from ecisem_core.ui.registry import PAGES
from ecisem_core.ui.roles import ANNOTATOR, ROLE_PARAM

__all__ = [
    # from ecisem_core.curation.review
    "ANNOTATIONS_ENV", "DEFAULT_ANNOTATIONS_DB", "EMPTY_VERDICTS", "VERDICT_COLUMNS", "Imported", "all_verdicts",
    "annotations_path", "annotator_progress", "batch_items", "cv_auc_history", "default_batch_name",
    "import_verdicts", "item_table", "label_counts", "open_store", "previous_item", "queued_keys",
    "read_uploaded_verdicts", "send_to_batch", "short_time",
    "train_from_verdicts", "try_open_store", "unique_pairs", "verdicts_csv", "verdicts_fingerprint",
    # from ecisem_core.curation.verdicts
    "VERDICT_WORDS",
    # this module
    "EXPORT_KINDS", "LABEL_TEXT", "LIST_COLUMNS", "RANK_COLUMNS", "Download", "app_base", "baselines", "batch_idf",
    "batch_link", "batch_options", "candidates", "display_frame", "export_bytes", "export_download", "flag_table",
    "page_path", "parse_batch_id", "per_source_summary", "reason_kinds", "reason_pills", "reasons_present",
    "training_download", "triplet_card",
]

# ---------------------------------------------------------------------------------------------------- the list

RANK_COLUMNS = ("fn_score", "fn_model")
"""What the list can be ranked by: the rule-based score, or the learned scorer's probability."""


def reason_kinds(reasons: str) -> list[str]:
    """How the pages name the reasons of one ``fn_reasons`` string: their
    :attr:`~ecisem_core.curation.reasons.Reason.kind` (label; junk keeps its prefix), from their codes
    (:func:`~ecisem_core.curation.reasons.reason_codes`).

    >>> reason_kinds("relative-margin rule (s_qn 0.71 > s_qp − 0.05·|s_qp| = 0.70); combined evidence "
    ...              "(fn_score 0.62; s_pn 0.80)")
    ['relative-margin rule', 'combined evidence']
    >>> reason_kinds("junk: very short (2 words)")
    ['junk: very short']
    """
    return kinds_of(reason_codes(reasons))


def reason_pills(codes: Iterable[str]) -> list[tuple[str, bool]]:
    """(kind, is junk) per reason code: the badges of a triplet card."""
    return [(REASON_BY_CODE[c].kind, REASON_BY_CODE[c].junk) for c in codes]


def _codes(table: pd.DataFrame) -> pd.Series:
    """The ``fn_reason_codes`` of a :func:`flag_table` (read from ``fn_reasons`` for another table)."""
    if "fn_reason_codes" in table.columns:
        return table["fn_reason_codes"]
    return reason_code_column(table["fn_reasons"])


def flag_table(triplets: pd.DataFrame, s_qp: np.ndarray, s_qn: np.ndarray, s_pn: np.ndarray,
               flags: pd.DataFrame) -> pd.DataFrame:
    """One row per triplet (same order): its columns, the similarities, ``fn_score``/``fn_flag``/``junk_flag``/
    ``fn_reasons``, ``fn_reason_codes`` (tuple of reason codes, :mod:`ecisem_core.curation.reasons`) and ``row``
    (its position: the id used by selections). From a ``Prepared``:
    ``flag_table(p.triplets, p.s_qp, p.s_qn, p.s_pn, p.flags)``."""
    t = triplets.reset_index(drop=True)
    f = flags.reset_index(drop=True)
    out = t.assign(s_qp=np.asarray(s_qp, dtype=np.float64), s_qn=np.asarray(s_qn, dtype=np.float64),
                   s_pn=np.asarray(s_pn, dtype=np.float64))
    out = pd.concat([out.drop(columns=[c for c in f.columns if c in out.columns]), f], axis=1)
    out["fn_reason_codes"] = reason_code_column(out["fn_reasons"])
    out["row"] = np.arange(len(out), dtype=np.int64)
    return out


def reasons_present(table: pd.DataFrame) -> list[str]:
    """Kinds of the reasons that occur among flagged or junk rows, in the flagger's order (false-negative reasons
    first, then junk)."""
    mask = table["fn_flag"].to_numpy(bool) | table["junk_flag"].to_numpy(bool)
    seen = {c for codes in _codes(table.loc[mask]) for c in codes}
    return [r.kind for r in REASONS if r.code in seen]


def candidates(table: pd.DataFrame, *, sources: Sequence[str] | None = None, reasons: Sequence[str] | None = None,
               min_score: float = 0.0, junk: bool = False, rank_by: str = "fn_score") -> pd.DataFrame:
    """The review list: likely false negatives (``fn_flag`` and score ≥ ``min_score``) and, with ``junk``, junk
    rows that are not flagged (a copy of the positive is both: it is listed as a false negative); optionally only
    some ``sources`` and rows having any of ``reasons`` (reason codes or kinds, :mod:`ecisem_core.curation.reasons`;
    rows are matched on their codes); highest ``rank_by`` first (ties: source, then row). Adds ``kind`` ("false
    negative?" / "junk") and ``reasons`` (the list of the row's reason kinds)."""
    if rank_by not in table.columns:
        raise InputError(f"cannot rank by {rank_by!r}: the table has no such column")
    score = table[rank_by].to_numpy(dtype=np.float64)
    flagged = table["fn_flag"].to_numpy(bool)
    junk_only = table["junk_flag"].to_numpy(bool) & ~flagged  # a copy of the positive is both: listed as FN
    keep = (flagged & (score >= float(min_score))) | (junk_only if junk else False)
    if sources:
        keep &= table["source"].astype(str).isin(set(map(str, sources))).to_numpy()
    out = table.loc[keep].copy()
    codes = list(_codes(out))
    if reasons:
        wanted = {reason_code(r) for r in reasons} - {None}
        has = np.array([bool(wanted.intersection(c)) for c in codes], dtype=bool)
        out, codes = out.loc[has], [c for c, h in zip(codes, has) if h]
    out["kind"] = np.where(out["fn_flag"].to_numpy(bool), "false negative?", "junk")
    out["reasons"] = [kinds_of(c) for c in codes]
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
    """fn_score against the s_qn ranking and the margin rules (:func:`ecisem_core.curation.baselines.fn_baselines`)
    on the rows with a ground-truth ``fn_label``; ``None`` when there is none (or only one class)."""
    if "fn_label" not in table.columns:
        return None
    t = table if not sources else table[table["source"].astype(str).isin(set(sources))]
    y = pd.to_numeric(t["fn_label"], errors="coerce")
    known = y.dropna()
    if known.empty or known.nunique() < 2:
        return None
    return fn_baselines(t, y)


# ---------------------------------------------------------------------------------------------------- links

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
    """The Annotate page's link for a batch: the researcher's ``…/annotate?batch=<id>``, or with an annotator's
    name their personal *annotator link* ``…&annotator=<name>&role=annotator`` (the page alone, no researcher
    controls: :mod:`ecisem_core.ui.roles`); relative (``/annotate?…``) when ``base`` is "".

    >>> batch_link("http://h:8501", "annotate", 3, "Zoë Li")
    'http://h:8501/annotate?batch=3&annotator=Zo%C3%AB+Li&role=annotator'
    """
    params: dict[str, str] = {"batch": str(int(batch_id))}
    if annotator and annotator.strip():
        params["annotator"] = annotator.strip()
        params[ROLE_PARAM] = ANNOTATOR
    return f"{base.rstrip('/')}/{annotate_path.strip('/')}?{urlencode(params)}"


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


def export_bytes(rows: pd.DataFrame, kind: str, with_reasons: bool = False) -> bytes:
    """The review list in one of :data:`EXPORT_KINDS` (the same writers as ``ecisem flag``); the annotation
    formats carry the flagger's evidence only ``with_reasons``."""
    out = rows.drop(columns=[c for c in ("reasons", "fn_reason_codes", "kind", "row") if c in rows.columns])
    if kind == "csv":
        return candidate_frame(out).to_csv(index=False).encode("utf-8")
    if kind == "jsonl":
        frame = candidate_frame(out)
        return _jsonl_bytes(dict(zip(frame.columns, r)) for r in frame.itertuples(index=False, name=None))
    if kind == "label_studio":
        return json.dumps(label_studio_tasks(out, with_reasons=with_reasons), ensure_ascii=False, indent=1).encode("utf-8")
    if kind == "label_studio_config":
        return label_studio_config(with_reasons).encode("utf-8")
    if kind == "argilla":
        return _jsonl_bytes(argilla_records(out, with_reasons))
    if kind == "argilla_settings":
        return json.dumps(argilla_settings(with_reasons), indent=2).encode("utf-8")
    raise InputError(f"unknown export {kind!r}; use one of {list(EXPORT_KINDS)}")


def export_download(rows: pd.DataFrame, kind: str, stem: str = "fn_candidates", with_reasons: bool = False
                    ) -> Download:
    """:func:`export_bytes` as a lazy :class:`Download`."""
    if kind not in EXPORT_KINDS:
        raise InputError(f"unknown export {kind!r}; use one of {list(EXPORT_KINDS)}")
    _, suffix, mime = EXPORT_KINDS[kind]
    return Download(stem + suffix, mime, lambda: export_bytes(rows, kind, with_reasons))


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



# ---------------------------------------------------------------------------------------------------- annotating

def batch_idf(items: pd.DataFrame, passages: Iterable[str] = ()) -> IdfTable:
    """IDF over a batch's passages (positives ∪ negatives) and ``passages`` (e.g. the current dataset's: a batch
    of a few items alone makes every word look rare), for highlighting the overlaps that carry evidence."""
    batch = pd.concat([items["positive"], items["negative"]]).astype(str)
    return idf_table(dict.fromkeys([*map(str, passages), *batch]))


# ---------------------------------------------------------------------------------------------------- display

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
    """The URL path of a registered page file (``"views/annotate.py"`` → ``"annotate"``)."""
    for spec in PAGES:
        if spec.file == file:
            return spec.url_path
    raise KeyError(file)


def triplet_card(query: str, positive: str, negative: str, idf: dict[str, float] | None = None,
                 pills: Sequence[tuple[str, bool]] = (), colour: str | None = None) -> str:
    """HTML card of a triplet with IDF-highlighted overlaps (:func:`ecisem_core.curation.highlight.highlight_triplet`);
    ``pills`` are (text, warn) badges. Every text is escaped."""
    h = highlight_triplet(query, positive, negative, idf)
    badges = "".join(f'<span class="eci-pill{" warn" if warn else ""}">{html.escape(str(text))}</span>'
                     for text, warn in pills)
    style = f' style="border-left: 4px solid {html.escape(colour, quote=True)}"' if colour else ""
    meta = f'<div class="meta">{badges}</div>' if badges else ""
    return (f'<div class="eci-card"{style}>{meta}'
            f'<div class="lbl">query</div><div class="txt">{h["query"]}</div>'
            f'<div class="lbl">positive (labeled relevant)</div><div class="txt">{h["positive"]}</div>'
            f'<div class="lbl">candidate negative</div><div class="txt">{h["negative"]}</div></div>')
