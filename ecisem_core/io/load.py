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

This module is the public API (plus format detection and path expansion); the work is done by
:mod:`~ecisem_core.io.decode` (bytes → text), :mod:`~ecisem_core.io.formats` (one reader per format),
:mod:`~ecisem_core.io.schema` (raw frame → triplets) and :mod:`~ecisem_core.io.report` (the load report).
"""
from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.io.decode import decode_text, first_line, parser_bytes, read_bytes, read_head
from ecisem_core.io.formats.arrow import (
    dataset_dict_splits,
    frame_from_table,
    is_saved_dataset,
    read_arrow_file,
    read_parquet_table,
    read_saved_dataset,
)
from ecisem_core.io.formats.delimited import read_delimited
from ecisem_core.io.formats.json import read_json
from ecisem_core.io.report import MAX_EXAMPLES, Exclusion, FileReport, LoadReport
from ecisem_core.io.schema import (
    COLUMN_ALIASES,
    PLACEHOLDERS,
    TEXT_COLUMNS,
    TRIPLET_COLUMNS,
    to_triplets,
)

__all__ = [
    "COLUMN_ALIASES", "FORMATS", "FORMAT_ALIASES", "MAX_EXAMPLES", "PLACEHOLDERS", "TEXT_COLUMNS",
    "TRIPLET_COLUMNS", "Exclusion", "FileReport", "LoadReport", "LoadResult", "detect_format", "load_triplets",
    "read_triplets",
]

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("auto", "jsonl", "json", "csv", "tsv", "triples", "parquet", "arrow", "hf_disk")
"""Values accepted by ``fmt=`` (plus the aliases in :data:`FORMAT_ALIASES`)."""

FORMAT_ALIASES: dict[str, str] = {
    "tevatron": "jsonl", "flagembedding": "jsonl", "ndjson": "jsonl", "msmarco": "triples",
    "sentence-transformers": "hf_disk", "sentence_transformers": "hf_disk", "datasets": "hf_disk",
}

_EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".feather": "arrow",
}
_FOLDER_EXTENSIONS = (".jsonl", ".ndjson", ".csv", ".tsv", ".parquet", ".arrow",
                      ".jsonl.gz", ".csv.gz", ".tsv.gz")


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
    report = LoadReport()
    inputs = _distinct_sources(_expand_paths(paths), report if source is None else None)
    frames = []
    for path, default_source in inputs:
        raw, kind = _read_raw(path, fmt, encoding, report)
        frames.append(to_triplets(raw, path, kind, source or default_source, report))
    table = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    _split_reused_query_ids(table, report)
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
        if is_saved_dataset(p):
            return "hf_disk"
        raise InputError("folder is not a dataset saved with save_to_disk (no state.json or *.arrow files)", p)
    name = p.name.lower()
    compressed = name.endswith(".gz")
    ext = Path(name[:-3] if compressed else name).suffix
    head = read_head(p, compressed)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"ARROW1") or head.startswith(b"\xff\xff\xff\xff"):
        return "arrow"
    by_ext = _EXTENSIONS.get(ext)
    if by_ext in ("parquet", "arrow"):
        return by_ext  # the reader says precisely what is wrong with the content
    first = first_line(head)
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


# ------------------------------------------------------------------------------------------------ inputs


def _canonical_format(fmt: str) -> str:
    f = str(fmt).strip().lower()
    f = FORMAT_ALIASES.get(f, f)
    if f not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return f


def _expand_paths(paths: Any) -> list[tuple[Path, str, Path]]:
    """(path, default source name, what the name came from) for every input; plain folders become their
    supported files."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError("file not found", p)
        if p.is_dir() and (p / "dataset_dict.json").is_file():
            for split in dataset_dict_splits(p):
                out.append((split, p.name, p))
        elif p.is_dir() and not is_saved_dataset(p):
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and not f.name.startswith(".")
                           and f.name.lower().endswith(_FOLDER_EXTENSIONS))
            if not files:
                raise InputError(f"folder holds no supported files ({', '.join(_FOLDER_EXTENSIONS)})", p)
            out.extend((f, _stem(f), f) for f in files)
        else:
            out.append((p, _stem(p), p))
    if not out:
        raise InputError("no input files given")
    return out


def _distinct_sources(inputs: list[tuple[Path, str, Path]],
                      report: LoadReport | None) -> list[tuple[Path, str]]:
    """(path, source name): inputs from different places that would share a name (``bm25/train.jsonl`` and
    ``dense/train.jsonl``) are named with as many parent folders as tell them apart (``bm25/train``,
    ``dense/train``), with a note. ``report=None``: names are kept (the caller named the source)."""
    origins: dict[str, list[Path]] = {}
    for _, name, origin in inputs:
        full = Path(os.path.abspath(origin))
        if full not in origins.setdefault(name, []):
            origins[name].append(full)
    renamed: dict[tuple[str, Path], str] = {}
    for name, places in origins.items():
        if report is None or len(places) < 2:
            continue
        depth = 1
        while True:
            labels = ["/".join([*o.parent.parts[-depth:], name]) for o in places]
            if len(set(labels)) == len(labels) or depth > max(len(o.parts) for o in places):
                break
            depth += 1
        if len(set(labels)) < len(labels):
            labels = [str(o) for o in places]
        renamed.update({(name, o): label for o, label in zip(places, labels)})
        report.notes.append(f"{len(places)} inputs would all be source {name!r}; named "
                            f"{', '.join(repr(x) for x in labels)} instead (a 'source' column still wins)")
    return [(path, renamed.get((name, Path(os.path.abspath(origin))), name)) for path, name, origin in inputs]


def _split_reused_query_ids(table: pd.DataFrame, report: LoadReport) -> None:
    """A ``query_id`` used for several different query texts names several queries: the first text keeps the id,
    the others get ``id#2``, ``id#3`` … (in order of appearance), with a note (in place)."""
    if table.empty:
        return
    firsts = table.drop_duplicates(["query_id", "query"])[["query_id", "query"]]
    counts = firsts["query_id"].value_counts(sort=False)
    reused = counts[counts > 1]
    if reused.empty:
        return
    firsts = firsts[firsts["query_id"].isin(reused.index)].copy()
    rank = firsts.groupby("query_id", sort=False).cumcount()
    firsts["new_id"] = firsts["query_id"].astype(str) + rank.map(lambda k: f"#{k + 1}" if k else "")
    new = firsts[rank.to_numpy() > 0]
    key = pd.MultiIndex.from_frame(table[["query_id", "query"]])
    mapping = pd.Series(new["new_id"].to_numpy(), index=pd.MultiIndex.from_frame(new[["query_id", "query"]]))
    hit = key.isin(mapping.index)
    table.loc[hit, "query_id"] = mapping.reindex(key[hit]).to_numpy()
    examples = ", ".join(repr(str(i)) for i in list(reused.index)[:MAX_EXAMPLES])
    report.notes.append(f"{len(reused):,} query_id(s) were used for different query texts (e.g. {examples}); "
                        f"the later texts got distinct ids ({len(new):,} renamed to id#2, id#3, …)")


def _stem(p: Path) -> str:
    name = p.name[:-3] if p.name.lower().endswith(".gz") else p.name
    return Path(name).stem if p.is_file() else p.name


def _read_raw(p: Path, fmt: str, encoding: str, report: LoadReport) -> tuple[pd.DataFrame, str]:
    """One input → (raw frame with a ``__line__`` column, format name)."""
    kind = detect_format(p) if fmt == "auto" else fmt
    if kind == "hf_disk" or p.is_dir():
        if not p.is_dir():
            raise InputError("fmt='hf_disk' needs a folder saved with save_to_disk", p)
        return frame_from_table(read_saved_dataset(p)), "hf_disk"
    if kind == "parquet":
        return frame_from_table(read_parquet_table(p)), "parquet"
    if kind == "arrow":
        return frame_from_table(read_arrow_file(p)), "arrow"
    data = read_bytes(p)
    text = decode_text(data, p, encoding)
    if kind in ("jsonl", "json"):
        return read_json(text, p, kind)
    sep = "," if kind == "csv" else "\t"
    try:
        return read_delimited(text, parser_bytes(data, text, encoding), sep, p, kind, report)
    except csv.Error as exc:
        cr = text.find("\r")
        line = text.count("\n", 0, cr) + 1 if cr >= 0 else None
        raise InputError(f"malformed {'TSV' if sep == chr(9) else 'CSV'} ({exc})", p, line) from None


def _summarise_table(table: pd.DataFrame, report: LoadReport) -> None:
    """Exact duplicates (same source, query, positive, negative; kept) and per-source counts."""
    dup = table.duplicated(["source", "query", "positive", "negative"])
    report.duplicates = int(dup.sum())
    if report.duplicates:
        counts = table.loc[dup, "source"].value_counts(sort=False)
        report.duplicates_by_source = {str(k): int(v) for k, v in counts.items()}
    report.per_source = {str(k): int(v) for k, v in table.groupby("source", sort=False).size().items()}
