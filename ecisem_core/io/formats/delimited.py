"""Delimited inputs → raw frames: CSV/TSV with a header, or headerless 3-column MS MARCO ``triples.train`` TSV
(header detection, quoting detection, and the line where each record starts)."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.io.report import LoadReport
from ecisem_core.io.schema import (
    COLUMN_ALIASES,
    LINE_COLUMN,
    NEG_K,
    has_required,
    missing_columns_error,
    resolve_columns,
)


def read_delimited(text: str, buf: bytes, sep: str, p: Path, kind: str,
                    report: LoadReport) -> tuple[pd.DataFrame, str]:
    """CSV/TSV with a header, or headerless 3-column triples. Vectorised (pandas C parser)."""
    first, first_no = _first_nonblank_line(text)
    fields = next(csv.reader([first], delimiter=sep))
    resolved = resolve_columns(fields)
    if kind == "triples":
        header = False
    elif has_required(resolved, fields):
        header = True
    elif len(fields) == 3 and not _looks_like_header(fields):
        header = False
    else:
        if len(fields) == 3 and all(f.strip().isdigit() for f in fields):
            raise InputError("looks like an id-only triples file (qid, pid, nid): it needs the texts — join it "
                             "with the queries and the collection first", p, first_no)
        raise missing_columns_error(fields, resolved, p,
                                     hint=" (if the file has no header row, pass fmt='triples')")
    if header:
        names = _dedupe([f.strip() for f in fields])
        text_like = {a for k in ("query", "positive", "negative", "query_id", "negative_id", "source", "fn_label")
                     for a in COLUMN_ALIASES[k]}
        str_cols = [n for n in names if n.lower() in text_like or NEG_K.match(n)]
        other = [n for n in names if n not in str_cols]
    else:
        names, str_cols, other = ["query", "positive", "negative"], ["query", "positive", "negative"], []
    kw: dict[str, Any] = dict(
        sep=sep, header=0 if header else None, names=names, dtype={c: "str" for c in str_cols},
        keep_default_na=False, na_values={c: [""] for c in other}, lineterminator="\n", engine="c",
    )
    df, quoting = None, csv.QUOTE_MINIMAL
    if sep == "\t":
        # MS MARCO-style TSV is unquoted (a passage may start with '"'); pandas-written TSV is quoted
        try:
            df = _parse_csv(buf, p, quoting=csv.QUOTE_NONE, **kw)
            quoting = csv.QUOTE_NONE
            if _looks_quoted(df, str_cols):
                df, quoting = None, csv.QUOTE_MINIMAL
        except InputError:
            df = None
    if df is None:
        df = _parse_csv(buf, p, quoting=csv.QUOTE_MINIMAL, **kw)
    if len(df) == 0:
        raise InputError("no data rows (only a header)", p)
    df[LINE_COLUMN] = _record_lines(text, len(df), header, sep, quoting, report, p)
    if not header:
        report.notes.append(f"{p}: no header row; read as headerless query/positive/negative triples")
        return df, "triples"
    return df, kind


def _parse_csv(buf: bytes, p: Path, **kw: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(buf), encoding="utf-8", **kw)
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", p) from None
    except (pd.errors.ParserError, ValueError) as exc:
        msg = str(exc).strip().replace("Error tokenizing data. C error: ", "")
        m = re.search(r"(?:line|row) (\d+)", msg)
        kind = "TSV" if kw.get("sep") == "\t" else "CSV"
        raise InputError(f"malformed {kind} ({msg})", p, int(m.group(1)) if m else None) from None


def _first_nonblank_line(text: str) -> tuple[str, int]:
    start, no = 0, 1
    while True:
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.strip():
            return line, no
        if end < 0:
            return "", no
        start, no = end + 1, no + 1


def _looks_like_header(fields: list[str]) -> bool:
    """A header row has short names (≤ 64 characters, ≤ 3 words); a data row of triples has sentences."""
    return all(len(f) <= 64 and len(f.split()) <= 3 for f in fields)


def _looks_quoted(df: pd.DataFrame, cols: list[str]) -> bool:
    for c in cols:
        s = df[c]
        if s.dtype == object:
            s = s.astype("str")
        if bool((s.str.startswith('"') & s.str.endswith('"') & (s.str.len() >= 2)).fillna(False).any()):
            return True
    return False


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return out


def _record_lines(text: str, n: int, header: bool, sep: str, quoting: int, report: LoadReport,
                  p: Path) -> np.ndarray:
    """1-based line where each parsed record starts.

    Fast path (vectorised): one record per line. With blank lines or quoted fields spanning lines, the starts
    are recounted with the csv module (only then).
    """
    n_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    offset = 2 if header else 1
    if n_lines - (offset - 1) == n and not text.startswith("\n"):
        return np.arange(offset, n + offset, dtype=np.int64)
    blank_chars = " " if sep == "\t" else " \t"
    starts: list[int] = []
    lines = text.split("\n")
    reader = csv.reader(iter(lines), delimiter=sep, quoting=quoting)
    prev = 0
    for rec in reader:
        if rec and not (len(rec) == 1 and not rec[0].strip(blank_chars)):
            starts.append(prev + 1)
        prev = reader.line_num
    if header:
        starts = starts[1:]
    if len(starts) == n:
        return np.asarray(starts, dtype=np.int64)
    report.notes.append(f"{p}: could not map rows to lines exactly; 'line' is the data row + {offset - 1}")
    return np.arange(offset, n + offset, dtype=np.int64)
