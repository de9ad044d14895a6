"""The triplet schema: a raw frame of one input → validated triplet rows.

Column aliases and their resolution, grouped (Tevatron / FlagEmbedding) expansion, ``negative_1..negative_k``
melting, the text checks that exclude rows (recorded in the :class:`~ecisem_core.io.report.LoadReport`), ids,
false-negative labels and sources: :func:`to_triplets`.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ecisem_core.errors import InputError
from ecisem_core.io.report import MAX_EXAMPLES, Exclusion, FileReport, LoadReport

TRIPLET_COLUMNS: tuple[str, ...] = (
    "query_id", "query", "positive", "negative", "source", "negative_id", "fn_label", "file", "line",
)
"""Leading columns of the triplet table, in order (docs/ARCHITECTURE.md); extra input columns follow."""

TEXT_COLUMNS: tuple[str, ...] = ("query", "positive", "negative")

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "query": ("query", "anchor", "query_text"),
    "positive": ("positive", "pos", "gold_passage", "positive_passages"),
    "negative": ("negative", "neg", "hard_negative", "negative_passages"),
    "query_id": ("query_id", "qid"),
    "negative_id": ("negative_id", "neg_id"),
    "fn_label": ("fn_label", "is_false_negative", "false_negative"),
    "source": ("source",),
}
"""Accepted input column names (case-insensitive) for each canonical column, in order of preference."""

PLACEHOLDERS: frozenset[str] = frozenset({"nan", "none", "null", "<na>", "n/a"})
"""Texts (after strip, lower-cased) that are missing values written out as strings; such rows are excluded."""

LINE_COLUMN = "__line__"
"""Column of a raw frame holding each record's 1-based line (or record number); becomes ``line``."""
REASON_COLUMN = "__reason__"
"""Column of an expanded grouped frame holding a record-level exclusion reason ("" when none)."""
NEG_K = re.compile(r"^negative_(\d+)$", re.IGNORECASE)
"""Column names ``negative_1..negative_k`` (one negative each)."""

_TRUE = ("true", "1", "1.0", "yes", "y", "t")
_FALSE = ("false", "0", "0.0", "no", "n", "f")
_LABEL_MAP = {**{v: 1.0 for v in _TRUE}, **{v: 0.0 for v in _FALSE}}
_MISSING_STRINGS = ("", "nan", "none", "<na>")


def resolve_columns(columns: Sequence[Any]) -> dict[str, str]:
    """canonical name → actual column, first alias present (case-insensitive, spaces stripped)."""
    lower: dict[str, str] = {}
    for c in columns:
        if isinstance(c, str):
            lower.setdefault(c.strip().lower(), c)
    out = {}
    for canon, aliases in COLUMN_ALIASES.items():
        for a in aliases:
            if a in lower:
                out[canon] = lower[a]
                break
    return out


def negative_k_columns(columns: Sequence[Any]) -> list[str]:
    """Columns named ``negative_1..negative_k``, in the order of k."""
    found = [(int(m.group(1)), c) for c in columns if isinstance(c, str) and (m := NEG_K.match(c.strip()))]
    return [c for _, c in sorted(found)]


def has_required(resolved: dict[str, str], columns: Sequence[Any]) -> bool:
    """True when query, positive and a negative (or negative_1..negative_k) columns are present."""
    return ("query" in resolved and "positive" in resolved
            and ("negative" in resolved or bool(negative_k_columns(columns))))


def missing_columns_error(columns: Sequence[Any], resolved: dict[str, str], p: Path,
                           hint: str = "") -> InputError:
    """The error naming the missing required columns, the columns found and the accepted names."""
    missing = [c for c in TEXT_COLUMNS if c not in resolved
               and not (c == "negative" and negative_k_columns(columns))]
    found = [str(c)[:40] for c in columns if c != LINE_COLUMN]
    accepted = "; ".join(f"{c}: {'/'.join(COLUMN_ALIASES[c])}" for c in TEXT_COLUMNS)
    return InputError(f"missing required column(s) {', '.join(missing)}; found columns {found}. "
                      f"Accepted names — {accepted} (or negative_1..negative_k){hint}", p)


def _as_list(v: Any) -> list[Any] | None:
    """A grouped cell as a list: lists/tuples/arrays as is, a lone text or passage dict wrapped, else None."""
    if isinstance(v, list):
        return v
    if isinstance(v, (tuple, np.ndarray)):
        return list(v)
    if isinstance(v, (str, dict)):
        return [v]
    return None


def _is_grouped(df: pd.DataFrame, cols: dict[str, str]) -> bool:
    """True when the positive or negative column holds lists (Tevatron / FlagEmbedding)."""
    for key in ("positive", "negative"):
        s = df[cols[key]]
        if s.dtype != object:
            continue
        nonnull = s.dropna()
        if len(nonnull) and isinstance(nonnull.iloc[0], (list, tuple, np.ndarray, dict)):
            return True
    return False


def _passage_text(v: Any) -> Any:
    """Tevatron passage dict → ``title + " " + text`` (title skipped when empty or "-"); other values as is."""
    if not isinstance(v, dict):
        return v
    text, title = v.get("text"), v.get("title")
    if isinstance(text, str) and isinstance(title, str) and title.strip() not in ("", "-"):
        return f"{title} {text}"
    return text


def _passage_id(v: Any) -> Any:
    if isinstance(v, dict):
        for k in ("docid", "doc_id", "id", "_id", "pid"):
            if v.get(k) is not None:
                return v[k]
    return None


def _expand_grouped(df: pd.DataFrame, cols: dict[str, str], original: dict[str, str], p: Path,
                    report: LoadReport) -> pd.DataFrame:
    """One grouped record per query → one row per negative, paired with the first positive.

    ``original`` maps canonical names to the file's own column names (for messages)."""
    pcol, ncol = cols["positive"], cols["negative"]
    lower = {str(c).strip().lower(): c for c in df.columns}
    pscol, nscol = lower.get("pos_scores"), lower.get("neg_scores")
    pos = df[pcol].map(_as_list)
    neg = df[ncol].map(_as_list)
    n_pos = pos.map(len, na_action="ignore")
    n_neg = neg.map(len, na_action="ignore")
    report.multi_positive_queries += int((n_pos > 1).sum())
    report.extra_positives += int((n_pos - 1).clip(lower=0).sum())

    reason = np.full(len(df), "", dtype=object)
    reason[(n_neg == 0).to_numpy()] = "query without negatives"
    reason[neg.isna().to_numpy()] = "negatives not a list of texts"
    reason[(n_pos == 0).to_numpy()] = "query without positives"
    reason[pos.isna().to_numpy()] = "positives not a list of texts"

    out = df.drop(columns=[c for c in (pcol, ncol, pscol, nscol) if c is not None])
    out = out.rename(columns={c: f"orig_{c}" for c in ("neg_score", "pos_score", "positive_id") if c in out})
    first = pos.map(lambda lst: lst[0] if lst else None, na_action="ignore")
    out["positive"] = first.map(_passage_text, na_action="ignore")
    pos_ids = first.map(_passage_id, na_action="ignore")
    if pos_ids.notna().any():
        out["positive_id"] = pos_ids
    if pscol is not None:
        ps = df[pscol].map(_as_list)
        out["pos_score"] = ps.map(lambda lst: lst[0] if lst else np.nan, na_action="ignore").astype(float)
    out["negative"] = neg
    explode = ["negative"]
    if nscol is not None:
        ns = df[nscol].map(_as_list)
        n_ns = ns.map(len, na_action="ignore")
        bad = (ns.notna() & neg.notna() & (n_ns != n_neg)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{nscol} has {int(n_ns.iloc[i])} values but {original['negative']} has "
                             f"{int(n_neg.iloc[i])}",
                             p, int(df[LINE_COLUMN].iloc[i]))
        fill = ns.isna() & neg.notna()
        ns[fill] = n_neg[fill].map(lambda k: [np.nan] * int(k))
        out["neg_score"] = ns
        explode.append("neg_score")
    out[REASON_COLUMN] = reason
    out = out.explode(explode, ignore_index=True)
    if "neg_score" in out:
        out["neg_score"] = pd.to_numeric(out["neg_score"], errors="coerce").astype(float)
    neg_cells = out["negative"]
    if any(isinstance(lst[0], dict) for lst in neg.dropna() if lst):
        out["negative"] = neg_cells.map(_passage_text)
        ids = neg_cells.map(_passage_id)
        if ids.notna().any():
            out["negative_id"] = ids
    return out


def _melt_negatives(df: pd.DataFrame, neg_cols: list[str]) -> pd.DataFrame:
    """Columns negative_1..negative_k → one row per negative (row-major: row 1's negatives first)."""
    k, n = len(neg_cols), len(df)
    rest = df.drop(columns=neg_cols)
    out = rest.iloc[np.repeat(np.arange(n), k)].reset_index(drop=True)
    out["negative"] = df[neg_cols].to_numpy(dtype=object).reshape(-1)
    return out


def _text_problems(s: pd.Series) -> np.ndarray:
    """Per row: "" when ``s`` holds usable text, else "missing" / "non-text" / "empty" / "placeholder"."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    missing = s.isna().to_numpy()
    if s.dtype == object:
        is_str = np.fromiter((isinstance(v, str) for v in s.to_numpy()), dtype=bool, count=len(s))
        t = s.where(is_str)
    elif pd.api.types.is_string_dtype(s.dtype):  # "str", string[pyarrow], ArrowDtype(string)
        is_str = ~missing
        t = s
    else:  # numbers, booleans, …
        is_str = np.zeros(len(s), dtype=bool)
        t = pd.Series(np.full(len(s), np.nan, dtype=object), index=s.index)
    nontext = ~missing & ~is_str
    empty = np.zeros(len(s), dtype=bool)
    placeholder = np.zeros(len(s), dtype=bool)
    if is_str.any():
        arr = pa.array(t, type=pa.large_string(), from_pandas=True)
        length = pc.utf8_length(arr)
        empty = _np_bool(pc.or_(pc.equal(length, 0), pc.utf8_is_space(arr)))
        short = _np_bool(pc.less_equal(length, 8)) & ~empty
        if short.any():
            words = pc.utf8_lower(pc.utf8_trim_whitespace(arr.filter(pa.array(short))))
            placeholder[short] = _np_bool(pc.is_in(words, value_set=pa.array(sorted(PLACEHOLDERS))))
    return np.select([missing, nontext, empty, placeholder], ["missing", "non-text", "empty", "placeholder"],
                     default="").astype(object)


def _np_bool(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow booleans → numpy bool (null → False)."""
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def _id_strings(s: pd.Series) -> pd.Series:
    """Ids as strings (integer-valued floats without ".0"); missing/empty → NaN."""
    if pd.api.types.is_float_dtype(s.dtype):
        vals = s.to_numpy(dtype=float)
        finite = vals[np.isfinite(vals)]
        if np.all(finite == np.round(finite)):
            s = s.astype("Int64")
    out = s.astype("str").str.strip()
    return out.where(~out.str.lower().isin(_MISSING_STRINGS))


def _derived_ids(texts: pd.Series, prefix: str) -> pd.Series:
    """``prefix`` + first 12 hex of sha1(text) (= :func:`hashing.short_id`), hashing each distinct text once."""
    codes, uniques = pd.factorize(texts)
    sha1 = hashlib.sha1
    ids = np.asarray([prefix + sha1(t.encode("utf-8")).hexdigest()[:12]
                      for t in np.asarray(uniques, dtype=object).tolist()], dtype=object)
    return pd.Series(ids[codes], index=texts.index, dtype="str")


def _labels(s: pd.Series, p: Path, report: LoadReport) -> np.ndarray:
    """true/false/1/0/yes/no (any case, bools, numbers) → 1.0/0.0; missing → NaN; unrecognised → NaN + note."""
    keys = s.astype("str").str.strip().str.lower()
    out = keys.map(_LABEL_MAP).astype(float)
    unknown = out.isna() & s.notna() & ~keys.isin(_MISSING_STRINGS)
    if unknown.any():
        ex = ", ".join(repr(v) for v in pd.unique(s[unknown].astype("str"))[:3])
        report.notes.append(f"{p}: {int(unknown.sum())} unrecognised false-negative labels (e.g. {ex}) set to NaN; "
                            f"use true/false, 1/0 or yes/no")
    return out.to_numpy(dtype=float)


def _example_value(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _record_exclusions(reason: np.ndarray, w: pd.DataFrame, p: Path, report: LoadReport) -> None:
    bad = np.flatnonzero(reason != "")
    if not len(bad):
        return
    lines = w[LINE_COLUMN].to_numpy()
    codes, counts = np.unique(reason[bad].astype(str), return_counts=True)
    for code, count in zip(codes, counts):
        idx = bad[reason[bad] == code][:MAX_EXAMPLES]
        col = code.rsplit(" ", 1)[-1]
        ex = report.exclusions.setdefault(code, Exclusion(code))
        ex.count += int(count)
        for i in idx:
            if len(ex.examples) >= MAX_EXAMPLES:
                break
            value = w[col if col in TEXT_COLUMNS else "query"].iloc[i]  # record-level reasons show the query
            ex.examples.append({"file": str(p), "line": int(lines[i]), "value": _example_value(value)})


def to_triplets(raw: pd.DataFrame, p: Path, kind: str, default_source: str, report: LoadReport) -> pd.DataFrame:
    """Raw frame of one input → validated triplet rows (columns :data:`TRIPLET_COLUMNS` + extras)."""
    n_records = len(raw)
    if n_records == 0:
        raise InputError("no records in file", p)
    columns = [c for c in raw.columns if c != LINE_COLUMN]
    cols = resolve_columns(columns)
    if not has_required(cols, columns):
        raise missing_columns_error(columns, cols, p)
    neg_k = [] if "negative" in cols else negative_k_columns(columns)

    # canonical names; extras that collide with output names are kept as orig_<name>
    original = dict(cols)
    rename = {actual: canon for canon, actual in cols.items()}
    clash = {c: f"orig_{c}" for c in columns if c not in rename and (c in TRIPLET_COLUMNS or c == REASON_COLUMN)}
    w = raw.rename(columns={**clash, **rename})
    cols = {k: k for k in cols}

    if "negative" in cols and _is_grouped(w, cols):
        w = _expand_grouped(w, cols, original, p, report)
    elif neg_k:
        w = _melt_negatives(w, neg_k)
    if REASON_COLUMN not in w:
        w[REASON_COLUMN] = ""

    reason = w[REASON_COLUMN].to_numpy(dtype=object)
    for c in TEXT_COLUMNS:
        kinds = _text_problems(w[c])
        todo = (reason == "") & (kinds != "")
        reason[todo] = kinds[todo] + " " + c
    _record_exclusions(reason, w, p, report)
    keep = reason == ""
    n_rows, n_kept = len(w), int(keep.sum())
    report.files.append(FileReport(str(p), kind, n_records, n_rows, n_kept))
    if n_kept == 0:
        reasons = ", ".join(f"{r} {c}" for r, c in zip(*np.unique(reason.astype(str), return_counts=True)))
        raise InputError(f"all {n_rows} rows were excluded ({reasons})", p)
    if n_kept < n_rows:
        w = w.loc[keep].reset_index(drop=True)

    q = w["query"].astype("str")
    neg = w["negative"].astype("str")
    out = pd.DataFrame({
        "query_id": _ids_or_derived(w.get("query_id"), q, "q"),
        "query": q,
        "positive": w["positive"].astype("str"),
        "negative": neg,
        "source": _sources(w.get("source"), default_source, len(w), p, report),
        "negative_id": _ids_or_derived(w.get("negative_id"), neg, "n"),
        "fn_label": _labels(w["fn_label"], p, report) if "fn_label" in w else np.full(len(w), np.nan),
        "file": pd.Series(str(p), index=w.index, dtype="str"),
        "line": w[LINE_COLUMN].to_numpy(dtype=np.int64),
    })
    extras = [c for c in w.columns if c not in TRIPLET_COLUMNS and c not in (LINE_COLUMN, REASON_COLUMN)]
    if extras:
        out = pd.concat([out, w[extras]], axis=1)
    return out


def _ids_or_derived(ids: pd.Series | None, texts: pd.Series, prefix: str) -> pd.Series:
    derived = _derived_ids(texts, prefix)
    if ids is None:
        return derived
    return _id_strings(ids).fillna(derived).astype("str")


def _sources(s: pd.Series | None, default: str, n: int, p: Path, report: LoadReport) -> pd.Series:
    """The ``source`` column when present (empty cells get ``default``, with a note), else ``default``."""
    if s is None:
        return pd.Series([default] * n, dtype="str")
    names = _id_strings(s).reset_index(drop=True)
    n_missing = int(names.isna().sum())
    if n_missing:
        report.notes.append(f"{p}: {n_missing} rows have an empty source; named {default!r}")
    return names.fillna(default).astype("str")
