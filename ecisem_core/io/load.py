"""Every input format → one triplet table + :class:`LoadReport`.

    result = read_triplets(["bm25.csv", "llm.jsonl"])        # LoadResult(triplets, report)
    table = load_triplets("mined.jsonl", source="bge")       # the table only; warns when rows were excluded

Accepted inputs (auto-detected from extension and content, or forced with ``fmt=``):

* ``jsonl`` / ``json`` / ``csv`` / ``tsv`` / ``parquet``: one row per triplet with columns ``query``,
  ``positive``, ``negative`` (aliases ``anchor``/``pos``/``neg`` and ``query_text``/``gold_passage``/
  ``hard_negative``; ``negative_1..negative_k`` are expanded to one row per negative), optional ``source``,
  ``query_id``/``qid``, ``negative_id``, a false-negative label (``fn_label``/``is_false_negative``/
  ``false_negative``) and any extra columns (kept).
* ``triples``: headerless 3-column MS MARCO ``triples.train`` TSV (``query<TAB>positive<TAB>negative``); chosen
  automatically for a 3-column file whose first row is not a header.
* Tevatron / FlagEmbedding JSONL (or Parquet): ``query`` + ``pos``/``positive_passages`` (list) +
  ``neg``/``negative_passages`` (list), optional ``pos_scores``/``neg_scores``. Each record becomes one triplet per
  negative, paired with the *first* positive (queries with several positives are counted in the report).
* ``hf_disk``: a ``datasets.Dataset.save_to_disk`` folder (``state.json`` + ``*.arrow``; a ``DatasetDict``
  folder is read split by split), e.g. sentence-transformers (anchor, positive, negative[_1..k]) datasets.
  Read with pyarrow; the ``datasets`` package is not needed.

Rows whose query, positive or negative is missing, not a string, empty/whitespace-only or a missing-value
placeholder (``"nan"``, ``"None"``, ``"null"``, ``"<NA>"``, ``"n/a"``) are excluded and reported (count, reason,
up to 5 examples with file and line), never silently dropped. Problems with a whole file raise
:class:`~ecisem_core.errors.InputError` naming the file, the line when known, and the problem.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecisem_core.errors import InputError

log = logging.getLogger(__name__)

TRIPLET_COLUMNS: tuple[str, ...] = (
    "query_id", "query", "positive", "negative", "source", "negative_id", "fn_label", "file", "line",
)
"""Leading columns of the triplet table, in order (docs/ARCHITECTURE.md); extra input columns follow."""

TEXT_COLUMNS: tuple[str, ...] = ("query", "positive", "negative")

FORMATS: tuple[str, ...] = ("auto", "jsonl", "json", "csv", "tsv", "triples", "parquet", "arrow", "hf_disk")
"""Values accepted by ``fmt=`` (plus the aliases in :data:`FORMAT_ALIASES`)."""

FORMAT_ALIASES: dict[str, str] = {
    "tevatron": "jsonl", "flagembedding": "jsonl", "ndjson": "jsonl", "msmarco": "triples",
    "sentence-transformers": "hf_disk", "sentence_transformers": "hf_disk", "datasets": "hf_disk",
}

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

MAX_EXAMPLES = 5

_EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
}
_FOLDER_EXTENSIONS = (".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".arrow",
                      ".jsonl.gz", ".csv.gz", ".tsv.gz")
_TRUE = ("true", "1", "1.0", "yes", "y", "t")
_FALSE = ("false", "0", "0.0", "no", "n", "f")
_LABEL_MAP = {**{v: 1.0 for v in _TRUE}, **{v: 0.0 for v in _FALSE}}
_LINE = "__line__"
_REASON = "__reason__"
_NEG_K = re.compile(r"^negative_(\d+)$", re.IGNORECASE)
_RESERVED_OUT = ("file", "line")
_MISSING_STRINGS = ("", "nan", "none", "<na>")


# ----------------------------------------------------------------------------------------------- report


@dataclass
class Exclusion:
    """Rows excluded for one reason: how many, and up to 5 examples ``{"file", "line", "value"}``."""

    reason: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FileReport:
    """One input read: its format, records in the file, candidate triplets after expansion, triplets kept."""

    file: str
    format: str
    records: int
    rows: int
    kept: int


@dataclass
class LoadReport:
    """What the loader read, kept and excluded (shown by the CLI and the dashboard).

    ``rows_read`` counts candidate triplets after expanding grouped records (one per negative); it always equals
    ``rows_kept + rows_excluded``.
    """

    files: list[FileReport] = field(default_factory=list)
    exclusions: dict[str, Exclusion] = field(default_factory=dict)
    duplicates: int = 0
    duplicates_by_source: dict[str, int] = field(default_factory=dict)
    multi_positive_queries: int = 0
    extra_positives: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rows_kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def rows_excluded(self) -> int:
        return sum(e.count for e in self.exclusions.values())

    def headline(self) -> str:
        """One line: files, rows read/kept, exclusions by reason."""
        n_files = len(self.files)
        line = (f"{n_files} file{'s' if n_files != 1 else ''}: {self.rows_read:,} rows read, "
                f"{self.rows_kept:,} kept")
        if self.rows_excluded:
            reasons = ", ".join(f"{e.reason} {e.count:,}" for e in self._sorted_exclusions())
            line += f", {self.rows_excluded:,} excluded ({reasons})"
        return line

    def summary(self) -> str:
        """Human-readable, several lines: the headline, then exclusions with examples, duplicates, positives,
        per-source counts and notes."""
        out = [self.headline()]
        for e in self._sorted_exclusions():
            where = "; ".join(f"{x['file']} line {x['line']}: {x['value']}" for x in e.examples)
            out.append(f"  excluded {e.count:,} × {e.reason} (e.g. {where})")
        if self.duplicates:
            out.append(f"  {self.duplicates:,} exact duplicate triplets (same source, query, positive, negative; kept)")
        if self.multi_positive_queries:
            out.append(f"  {self.multi_positive_queries:,} queries had several positives: the first was used, "
                       f"{self.extra_positives:,} others ignored")
        if self.per_source:
            out.append("  per source: " + ", ".join(f"{k} {v:,}" for k, v in self.per_source.items()))
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "files": [vars(f).copy() for f in self.files],
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_excluded": self.rows_excluded,
            "exclusions": {k: {"count": e.count, "examples": [dict(x) for x in e.examples]}
                           for k, e in self.exclusions.items()},
            "duplicates": self.duplicates,
            "duplicates_by_source": dict(self.duplicates_by_source),
            "multi_positive_queries": self.multi_positive_queries,
            "extra_positives": self.extra_positives,
            "per_source": dict(self.per_source),
            "notes": list(self.notes),
        }

    def _sorted_exclusions(self) -> list[Exclusion]:
        return sorted(self.exclusions.values(), key=lambda e: -e.count)


@dataclass
class LoadResult:
    """Output of :func:`read_triplets`: the triplet table and the report."""

    triplets: pd.DataFrame
    report: LoadReport


# ------------------------------------------------------------------------------------------------ public


def read_triplets(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    source: str | None = None,
    fmt: str = "auto",
    encoding: str = "utf-8",
) -> LoadResult:
    """Read one or several inputs into one triplet table (columns :data:`TRIPLET_COLUMNS`, then extras).

    Args:
        paths: a file or folder, or a sequence of them (concatenated in order). A plain folder means the
            supported files inside it; a ``save_to_disk`` folder is read as a dataset.
        source: source name for files without a ``source`` column (default: the file stem).
        fmt: ``"auto"`` or one of :data:`FORMATS` / :data:`FORMAT_ALIASES`, applied to every file.
        encoding: text encoding of CSV/TSV/JSON files (UTF-8 with or without BOM by default).

    Raises:
        InputError: unreadable file, unknown format, malformed line, missing column, wrong encoding, empty file,
            or a file all of whose rows were excluded.

    Example:
        >>> res = read_triplets("bm25_train.csv")          # doctest: +SKIP
        >>> res.triplets.columns[:4].tolist(), res.report.rows_kept   # doctest: +SKIP
        (['query_id', 'query', 'positive', 'negative'], 1000)
    """
    fmt = _canonical_format(fmt)
    inputs = _expand_paths(paths)
    report = LoadReport()
    frames = []
    for path, default_source in inputs:
        raw, kind = _read_raw(path, fmt, encoding, report)
        frames.append(_to_triplets(raw, path, kind, source or default_source, report))
    table = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    _summarise_table(table, report)
    return LoadResult(table, report)


def load_triplets(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **kw: Any) -> pd.DataFrame:
    """:func:`read_triplets` returning only the table; logs a one-line warning when rows were excluded."""
    result = read_triplets(paths, **kw)
    if result.report.rows_excluded:
        log.warning("%s", result.report.headline())
    return result.triplets


def detect_format(path: str | os.PathLike[str]) -> str:
    """Format of one input from its extension and first bytes: one of :data:`FORMATS` except ``"auto"``.

    ``"triples"`` is never returned here (headerless TSV is recognised while reading a ``"tsv"``).
    """
    p = Path(path)
    if p.is_dir():
        if _is_saved_dataset(p):
            return "hf_disk"
        raise InputError("folder is not a dataset saved with save_to_disk (no state.json or *.arrow files)", p)
    name = p.name.lower()
    compressed = name.endswith(".gz")
    ext = Path(name[:-3] if compressed else name).suffix
    head = _head(p, compressed)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    by_ext = _EXTENSIONS.get(ext)
    if by_ext in ("parquet", "arrow"):
        return by_ext  # the reader says precisely what is wrong with the content
    first = _first_line(head)
    if by_ext in ("json", "jsonl"):
        return by_ext
    if by_ext in ("csv", "tsv"):
        # a ".csv" that is really tab-separated (or the reverse) is common; trust the content when unambiguous
        if by_ext == "csv" and "\t" in first and "," not in first:
            return "tsv"
        if by_ext == "tsv" and "," in first and "\t" not in first:
            return "csv"
        return by_ext
    stripped = first.lstrip("\ufeff \t")
    if stripped.startswith("{"):
        return "jsonl"
    if stripped.startswith("["):
        return "json"
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    raise InputError(
        f"unknown format (extension {ext or '(none)'!r}); expected .jsonl, .json, .csv, .tsv, .parquet, .arrow "
        f"or a save_to_disk folder — or pass fmt= one of {', '.join(FORMATS[1:])}", p)


# --------------------------------------------------------------------------------------- inputs / bytes


def _canonical_format(fmt: str) -> str:
    f = str(fmt).strip().lower()
    f = FORMAT_ALIASES.get(f, f)
    if f not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return f


def _expand_paths(paths: Any) -> list[tuple[Path, str]]:
    """(path, default source name) for every input; plain folders become their supported files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError("file not found", p)
        if p.is_dir() and (p / "dataset_dict.json").is_file():
            for split in _dataset_dict_splits(p):
                out.append((split, p.name))
        elif p.is_dir() and not _is_saved_dataset(p):
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and not f.name.startswith(".")
                           and f.name.lower().endswith(_FOLDER_EXTENSIONS))
            if not files:
                raise InputError(f"folder holds no supported files ({', '.join(_FOLDER_EXTENSIONS)})", p)
            out.extend((f, _stem(f)) for f in files)
        else:
            out.append((p, _stem(p)))
    if not out:
        raise InputError("no input files given")
    return out


def _stem(p: Path) -> str:
    name = p.name[:-3] if p.name.lower().endswith(".gz") else p.name
    return Path(name).stem if p.is_file() else p.name


def _head(p: Path, compressed: bool, n: int = 4096) -> bytes:
    try:
        if compressed:
            with gzip.open(p, "rb") as fh:
                return fh.read(n)
        with open(p, "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read file ({getattr(exc, 'strerror', None) or exc})", p) from None


def _first_line(head: bytes) -> str:
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace")


def _read_bytes(p: Path) -> bytes:
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", p) from None
    if p.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"not a valid gzip file ({exc})", p) from None
    return data


def _decode(data: bytes, p: Path, encoding: str) -> str:
    """Bytes → text; a UTF-8 BOM is dropped, CRLF becomes LF, a wrong encoding names the line."""
    blank = b" \t\r\n\xef\xbb\xbf"
    if not data[:4096].strip(blank) and not data.strip(blank):
        raise InputError("file is empty", p)
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8", "utf-8-sig")
    if utf8 and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError("file is UTF-16 text; re-save it as UTF-8 or pass encoding='utf-16'", p)
    try:
        text = data.decode("utf-8-sig" if utf8 else encoding)
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}", p) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start:exc.start + 1].hex()
        hint = (" (looks like Latin-1 / Windows-1252 text); re-save it as UTF-8 or pass encoding='latin-1'"
                if utf8 else "")
        raise InputError(f"not valid {encoding} text: byte 0x{bad} at column {col} cannot be decoded{hint}",
                         p, line) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError("contains NUL characters: a binary file or UTF-16 text, not "
                         f"{encoding} text", p, text.count("\n", 0, nul) + 1)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return text


# ----------------------------------------------------------------------------------------- raw readers


def _read_raw(p: Path, fmt: str, encoding: str, report: LoadReport) -> tuple[pd.DataFrame, str]:
    """One input → (raw frame with a ``__line__`` column, format name)."""
    kind = detect_format(p) if fmt == "auto" else fmt
    if kind == "hf_disk" or p.is_dir():
        if not p.is_dir():
            raise InputError("fmt='hf_disk' needs a folder saved with save_to_disk", p)
        return _frame_from_table(_read_saved_dataset(p)), "hf_disk"
    if kind == "parquet":
        return _frame_from_table(_read_parquet_table(p)), "parquet"
    if kind == "arrow":
        return _frame_from_table(_read_arrow_file(p)), "arrow"
    data = _read_bytes(p)
    text = _decode(data, p, encoding)
    if kind in ("jsonl", "json"):
        return _read_json(text, p, kind)
    sep = "," if kind == "csv" else "\t"
    return _read_delimited(text, _parser_bytes(data, text, encoding), sep, p, kind, report)


def _parser_bytes(data: bytes, text: str, encoding: str) -> bytes:
    """UTF-8 bytes of ``text`` for the pandas C parser (BOM dropped, CRLF → LF), reusing ``data`` when it
    already is UTF-8: parsing bytes avoids a 4-byte-per-character copy of the whole text."""
    if encoding.lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
        return text.encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.replace(b"\r\n", b"\n") if b"\r" in data else data


def _frame_from_table(table: pa.Table) -> pd.DataFrame:
    df = table.to_pandas()
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()  # an index written by pandas (e.g. query_id) becomes a column again
    df.index = pd.RangeIndex(len(df))
    df[_LINE] = np.arange(1, len(df) + 1, dtype=np.int64)
    return df


def _read_parquet_table(p: Path) -> pa.Table:
    head = _head(p, False, 4)
    if not head:
        raise InputError("file is empty", p)
    if head != b"PAR1":
        raise InputError("not a Parquet file (the PAR1 magic bytes are missing)", p)
    try:
        return pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet ({exc})", p) from None


def _read_arrow_file(p: Path) -> pa.Table:
    """An Arrow IPC stream (what ``datasets`` writes) or an Arrow IPC/Feather v2 file."""
    if not _head(p, False, 1):
        raise InputError("file is empty", p)
    try:
        with pa.memory_map(str(p)) as src:
            return pa.ipc.open_stream(src).read_all()
    except (pa.ArrowException, OSError):
        pass
    try:
        with pa.memory_map(str(p)) as src:
            return pa.ipc.open_file(src).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not an Arrow IPC file or stream ({exc})", p) from None


def _is_saved_dataset(p: Path) -> bool:
    return (p / "state.json").is_file() or (p / "dataset_dict.json").is_file() or any(p.glob("*.arrow"))


def _dataset_dict_splits(p: Path) -> list[Path]:
    try:
        splits = json.loads((p / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable dataset_dict.json ({exc})", p / "dataset_dict.json") from None
    out = [p / str(s) for s in splits]
    for s in out:
        if not s.is_dir():
            raise InputError("split folder listed in dataset_dict.json is missing", s)
    return out


def _read_saved_dataset(p: Path) -> pa.Table:
    """The Arrow shards of a ``Dataset.save_to_disk`` folder, in the order of ``state.json``."""
    state = p / "state.json"
    if state.is_file():
        try:
            names = [d["filename"] for d in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"unreadable state.json ({exc})", state) from None
        files = [p / n for n in names]
    else:
        files = sorted(p.glob("*.arrow"))
    if not files:
        raise InputError("saved dataset has no .arrow data files", p)
    for f in files:
        if not f.is_file():
            raise InputError("data file listed in state.json is missing", f)
    tables = [_read_arrow_file(f) for f in files]
    try:
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise InputError(f"shards have different columns ({exc})", p) from None


def _read_json(text: str, p: Path, kind: str) -> tuple[pd.DataFrame, str]:
    """JSON Lines (one object per line; blank lines skipped) or a JSON array of objects."""
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg}, column {exc.colno})", p, exc.lineno) from None
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is not None:
            raise InputError(f"JSON array item {bad + 1} is not an object", p)
        if not data:
            raise InputError("file is empty (an empty JSON array)", p)
        df = pd.DataFrame.from_records(data)
        df[_LINE] = np.arange(1, len(df) + 1, dtype=np.int64)  # record number
        return df, "json"
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    decode = json.JSONDecoder().decode
    for i, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if not s:
            continue
        try:
            obj = decode(s)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg}, column {exc.colno})", p, i) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected one JSON object per line, got {type(obj).__name__}", p, i)
        records.append(obj)
        lines.append(i)
    df = pd.DataFrame.from_records(records)
    df[_LINE] = np.asarray(lines, dtype=np.int64)
    return df, "jsonl"


# ---- CSV / TSV


def _read_delimited(text: str, buf: bytes, sep: str, p: Path, kind: str,
                    report: LoadReport) -> tuple[pd.DataFrame, str]:
    """CSV/TSV with a header, or headerless 3-column triples. Vectorised (pandas C parser)."""
    first, first_no = _first_nonblank_line(text)
    fields = next(csv.reader([first], delimiter=sep))
    resolved = _resolve(fields)
    if kind == "triples":
        header = False
    elif _has_required(resolved, fields):
        header = True
    elif len(fields) == 3 and not _looks_like_header(fields):
        header = False
    else:
        if len(fields) == 3 and all(f.strip().isdigit() for f in fields):
            raise InputError("looks like an id-only triples file (qid, pid, nid): it needs the texts — join it "
                             "with the queries and the collection first", p, first_no)
        raise _missing_columns_error(fields, resolved, p,
                                     hint=" (if the file has no header row, pass fmt='triples')")
    if header:
        names = _dedupe([f.strip() for f in fields])
        text_like = {a for k in ("query", "positive", "negative", "query_id", "negative_id", "source", "fn_label")
                     for a in COLUMN_ALIASES[k]}
        str_cols = [n for n in names if n.lower() in text_like or _NEG_K.match(n)]
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
    df[_LINE] = _record_lines(text, len(df), header, sep, quoting, report, p)
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


# -------------------------------------------------------------------------------- normalise to triplets


def _resolve(columns: Sequence[Any]) -> dict[str, str]:
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


def _negative_k_columns(columns: Sequence[Any]) -> list[str]:
    found = [(int(m.group(1)), c) for c in columns if isinstance(c, str) and (m := _NEG_K.match(c.strip()))]
    return [c for _, c in sorted(found)]


def _has_required(resolved: dict[str, str], columns: Sequence[Any]) -> bool:
    return ("query" in resolved and "positive" in resolved
            and ("negative" in resolved or bool(_negative_k_columns(columns))))


def _missing_columns_error(columns: Sequence[Any], resolved: dict[str, str], p: Path,
                           hint: str = "") -> InputError:
    missing = [c for c in TEXT_COLUMNS if c not in resolved
               and not (c == "negative" and _negative_k_columns(columns))]
    found = [str(c)[:40] for c in columns if c != _LINE]
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
                             p, int(df[_LINE].iloc[i]))
        fill = ns.isna() & neg.notna()
        ns[fill] = n_neg[fill].map(lambda k: [np.nan] * int(k))
        out["neg_score"] = ns
        explode.append("neg_score")
    out[_REASON] = reason
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
    lines = w[_LINE].to_numpy()
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


def _to_triplets(raw: pd.DataFrame, p: Path, kind: str, default_source: str, report: LoadReport) -> pd.DataFrame:
    """Raw frame of one input → validated triplet rows (columns :data:`TRIPLET_COLUMNS` + extras)."""
    n_records = len(raw)
    if n_records == 0:
        raise InputError("no records in file", p)
    columns = [c for c in raw.columns if c != _LINE]
    cols = _resolve(columns)
    if not _has_required(cols, columns):
        raise _missing_columns_error(columns, cols, p)
    neg_k = [] if "negative" in cols else _negative_k_columns(columns)

    # canonical names; extras that collide with output names are kept as orig_<name>
    original = dict(cols)
    rename = {actual: canon for canon, actual in cols.items()}
    clash = {c: f"orig_{c}" for c in columns if c not in rename and (c in TRIPLET_COLUMNS or c == _REASON)}
    w = raw.rename(columns={**clash, **rename})
    cols = {k: k for k in cols}

    if "negative" in cols and _is_grouped(w, cols):
        w = _expand_grouped(w, cols, original, p, report)
    elif neg_k:
        w = _melt_negatives(w, neg_k)
    if _REASON not in w:
        w[_REASON] = ""

    reason = w[_REASON].to_numpy(dtype=object)
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
        "line": w[_LINE].to_numpy(dtype=np.int64),
    })
    extras = [c for c in w.columns if c not in TRIPLET_COLUMNS and c not in (_LINE, _REASON)]
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


def _summarise_table(table: pd.DataFrame, report: LoadReport) -> None:
    """Exact duplicates (same source, query, positive, negative; kept) and per-source counts."""
    dup = table.duplicated(["source", "query", "positive", "negative"])
    report.duplicates = int(dup.sum())
    if report.duplicates:
        counts = table.loc[dup, "source"].value_counts(sort=False)
        report.duplicates_by_source = {str(k): int(v) for k, v in counts.items()}
    report.per_source = {str(k): int(v) for k, v in table.groupby("source", sort=False).size().items()}
