"""The review workflow around the annotation store: where the store is and opening it, sending rows to a batch,
what a batch's verdicts are per annotator and per item (the researcher view), importing verdicts from a file,
collecting the verdicts of every batch, and training the learned scorer on them.

    store = open_store()                                      # $ECISEM_ANNOTATIONS_DB or data/annotations/…
    batch = send_to_batch(store, rows, "my batch")            # rows of a flagged triplet table
    verdicts = all_verdicts(store)
    model = train_from_verdicts(table, verdicts)              # NotEnoughVerdicts until both classes have N_MIN

No Streamlit: :mod:`ecisem_core.ui.curate` and the pages call these.
"""
from __future__ import annotations

import functools
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.curation.verdict_csv import read_verdicts_csv
from ecisem_core.curation.active import item_keys
from ecisem_core.curation.fn_model import (FnModel, NotEnoughVerdicts, labels_from_verdicts, model_features,
                                           train_fn_model)
from ecisem_core.curation.verdicts import VERDICT_WORDS, VERDICTS, item_consensus, line_number
from ecisem_core.errors import InputError

# ---------------------------------------------------------------------------------------------------- the store

ANNOTATIONS_ENV = "ECISEM_ANNOTATIONS_DB"
"""Environment variable naming the annotation store (an SQLite file; created on first use)."""
DEFAULT_ANNOTATIONS_DB = Path(__file__).resolve().parents[2] / "data" / "annotations" / "annotations.sqlite"
"""The store when ``ECISEM_ANNOTATIONS_DB`` is not set: under the project's ``data/annotations/`` (beside
``app.py``; git-ignored)."""


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


# ---------------------------------------------------------------------------------------------------- researcher view

def short_time(times: pd.Series) -> pd.Series:
    """ISO-8601 times of the store → ``"YYYY-MM-DD HH:MM:SS"``.

    >>> short_time(pd.Series(["2025-01-02T03:04:05.678901+00:00"])).tolist()
    ['2025-01-02 03:04:05']
    """
    return times.astype(str).str.slice(0, 19).str.replace("T", " ", regex=False)


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


# ---------------------------------------------------------------------------------------------------- verdicts

@dataclass(frozen=True)
class Imported:
    """Result of a verdict import: the batch that received them, how many, and whether the batch is new."""

    batch_id: int
    n_verdicts: int
    created: bool


def read_uploaded_verdicts(data: bytes, file_name: str, default_annotator: str | None = None) -> pd.DataFrame:
    """:func:`ecisem_core.curation.verdict_csv.read_verdicts_csv` on uploaded bytes; errors name the file as
    uploaded."""
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
                         "existing batch)", bad.get("file"), line_number(bad.get("line")))
    keys = table["query_id"].astype(str) + "\x00" + table["negative_id"].astype(str)
    first = pd.Series(np.arange(len(table)), index=keys.to_numpy()).groupby(level=0).first()
    wanted = list(dict.fromkeys(ids["query_id"] + "\x00" + ids["negative_id"]))
    missing = [k for k in wanted if k not in first.index]
    if missing:
        q, n = missing[0].split("\x00")
        rec = verdicts.loc[(ids["query_id"] == q) & (ids["negative_id"] == n)].iloc[0]
        raise InputError(f"no triplet of the current dataset has query_id {q!r} and negative_id {n!r}"
                         + (f" ({len(missing)} such rows)" if len(missing) > 1 else ""),
                         rec.get("file"), line_number(rec.get("line")))
    rows = table.iloc[first.loc[wanted].to_numpy()]
    with_ids = verdicts.assign(item_id=pd.array([pd.NA] * len(verdicts), dtype="Int64"))
    batch = store.create_batch(name or f"imported · {len(rows)} triplets", batch_items(rows), {"imported": True})
    return Imported(batch, store.record_verdicts(batch, with_ids), True)


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
    """Verdicts in the CSV shape :func:`ecisem_core.curation.verdict_csv.read_verdicts_csv` reads back (plus
    context)."""
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


def train_from_verdicts(table: pd.DataFrame, verdicts: pd.DataFrame, seed: int = 0,
                        features: pd.DataFrame | None = None) -> FnModel:
    """The learned scorer on the dataset's rows judged by the annotators (raises
    :class:`ecisem_core.curation.fn_model.NotEnoughVerdicts` with how many exist and are needed); ``features``:
    :func:`~ecisem_core.curation.fn_model.model_features` of ``table`` when already computed."""
    return train_fn_model(table, labels_from_verdicts(table, verdicts), seed=seed, features=features)


HISTORY_POINTS: int = 10
"""Most points of :func:`cv_auc_history` (its step grows with the number of verdicts)."""


def history_steps(n_verdicts: int, step: int = 20, points: int = HISTORY_POINTS) -> list[int]:
    """Verdict counts at which the learning history is measured: multiples of a step (``step``, or a larger
    multiple of it so that at most ``points`` are taken), then ``n_verdicts`` itself.

    >>> history_steps(50), history_steps(0), history_steps(1000)[:3], len(history_steps(1000))
    ([20, 40, 50], [], [100, 200, 300], 10)
    """
    if n_verdicts <= 0:
        return []
    stride = step * max(1, -(-n_verdicts // (step * points)))
    out = list(range(stride, n_verdicts, stride))
    return out[-(points - 1):] + [n_verdicts] if len(out) >= points else out + [n_verdicts]


def cv_auc_history(table: pd.DataFrame, verdicts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The learned scorer's cross-validated ROC AUC as the verdicts accumulated: trained on the first n current
    verdicts (in the order they were given, ``verdict_id``) at each n of :func:`history_steps`. Columns
    n_verdicts, cv_auc, cv_auc_std, n_false_negative, n_true_negative; counts with too few verdicts of a class are
    left out."""
    cols = ["n_verdicts", "cv_auc", "cv_auc_std", "n_false_negative", "n_true_negative"]
    if verdicts.empty:
        return pd.DataFrame(columns=cols)
    ordered = verdicts.sort_values("verdict_id", kind="stable")
    features = model_features(table)
    rows = []
    for n in history_steps(len(ordered)):
        try:
            m = train_from_verdicts(table, ordered.iloc[:n], seed, features)
        except NotEnoughVerdicts:
            continue
        rows.append((n, m.cv_auc, m.cv_auc_std, m.n_false_negative, m.n_true_negative))
    return pd.DataFrame(rows, columns=cols)


def queued_keys(store: AnnotationStore) -> set[str]:
    """Keys (:func:`ecisem_core.curation.active.item_keys`) of every item already in a batch of the store: the
    review queue does not offer them again, judged or not."""
    frames = [store.items(int(b))[["query_id", "negative_id"]] for b in store.list_batches()["id"]]
    frames = [f for f in frames if not f.empty]
    return set(item_keys(pd.concat(frames)).tolist()) if frames else set()
