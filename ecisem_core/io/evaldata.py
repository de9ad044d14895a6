"""Evaluation data (EVAL) for ``ecisem validate``: queries, a passage corpus and relevance judgements (qrels).

Three ways in, one result (:class:`EvalData`):

- :func:`load_beir` — a BEIR folder: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
  (``_id``, ``text``) and ``qrels/<split>.tsv`` (``query-id  corpus-id  score``, header line);
- :func:`load_pairs` — a TSV/CSV of (query, relevant passage) pairs such as ``msmarco_dev_beir.tsv``
  (columns ``query_text``, ``gold_passage``); the passages form the corpus, a query with several rows has several
  relevant passages;
- :func:`split_from_triplets` — a held-out split of the queries of the training triplets, by ``query_id`` and
  seeded, so that no query is in both training and evaluation.

:func:`subsample` makes a small evaluation set from a large one (seeded): some queries, their relevant passages,
and other passages as distractors up to a corpus size. :func:`remove_eval_leaks` is the leak guard: it removes
every training triplet whose normalised query text is an evaluation query, and says how many it removed.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.confine import checked
from ecisem_core.errors import InputError
from ecisem_core.hashing import short_id
from ecisem_core.io.jsonl import iter_jsonl

QUERY_COLUMNS: tuple[str, ...] = ("query_text", "query", "anchor", "question")
"""Accepted names of the query column of a pairs file, in order of preference."""
PASSAGE_COLUMNS: tuple[str, ...] = ("gold_passage", "positive", "passage", "pos", "document", "text")
"""Accepted names of the relevant-passage column of a pairs file, in order of preference."""
QRELS_SPLITS: tuple[str, ...] = ("test", "dev", "validation", "train")
"""BEIR qrels split used when none is named: the first of these that exists."""
SPLIT_FRACTION: float = 0.2
"""Default share of the training queries held out for evaluation by :func:`split_from_triplets`."""
SPLIT_SEED: int = 0
"""Default seed of the held-out split and of :func:`subsample`."""


@dataclass(frozen=True)
class EvalData:
    """An evaluation set.

    Attributes:
        queries: query id → query text (only queries with at least one relevant passage in the corpus).
        corpus: passage id → passage text.
        qrels: query id → {passage id: relevance grade > 0}.
        name: where it came from (path, or ``"held-out split"``), for reports.
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]
    name: str = ""

    @property
    def n_queries(self) -> int:
        return len(self.queries)

    @property
    def n_passages(self) -> int:
        return len(self.corpus)

    def fingerprint(self) -> str:
        """sha1 of the canonical JSON of queries, corpus and qrels: part of the validation cache key."""
        blob = json.dumps([self.queries, self.corpus, self.qrels], sort_keys=True, ensure_ascii=False)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "queries": self.n_queries, "passages": self.n_passages,
                "relevant_pairs": sum(len(v) for v in self.qrels.values()), "fingerprint": self.fingerprint()[:12]}


@dataclass(frozen=True)
class LeakReport:
    """What :func:`remove_eval_leaks` removed: triplets and distinct queries, in total and per source."""

    removed_triplets: int
    removed_queries: int
    by_source: dict[str, int] = field(default_factory=dict)


def normalise_query(text: str) -> str:
    """The key under which two query texts count as the same query.

    NFKC Unicode normalisation, case folding, every run of non-alphanumeric characters replaced by one space,
    stripped: ``"What are the Liberal-Arts?"`` and ``"what are the liberal arts"`` give the same key.
    """
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return re.sub(r"[\W_]+", " ", text).strip()


def _finish(queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, dict[str, int]], name: str,
            path: str | Path | None) -> EvalData:
    """Keep queries that have a relevant passage in the corpus; refuse an empty result."""
    qrels = {q: {d: g for d, g in rel.items() if g > 0 and d in corpus} for q, rel in qrels.items() if q in queries}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    queries = {q: queries[q] for q in qrels}
    if not queries:
        raise InputError("no query has a relevant passage in the corpus", path)
    return EvalData(queries=queries, corpus=corpus, qrels=qrels, name=name)


def _read_jsonl(path: Path, id_key: str = "_id") -> Iterable[tuple[int, dict]]:
    """(line, record) of a BEIR JSONL file; every record must be an object with an ``id_key`` field."""
    for line_no, row in iter_jsonl(path):
        if not isinstance(row, dict) or id_key not in row:
            raise InputError(f"expected a JSON object with an {id_key!r} field", path, line_no)
        yield line_no, row


def load_beir(folder: str | Path, split: str | None = None) -> EvalData:
    """Load a BEIR folder. The passage text is ``title + " " + text`` (title omitted when empty).

    ``split`` names ``qrels/<split>.tsv``; by default the first of :data:`QRELS_SPLITS` that exists, else the only
    ``.tsv`` in ``qrels/``. Relevance grades ≤ 0 are dropped; queries without a relevant passage are dropped.
    """
    folder = Path(folder)
    corpus: dict[str, str] = {}
    for line_no, row in _read_jsonl(folder / "corpus.jsonl"):
        text = " ".join(str(row.get(k) or "").strip() for k in ("title", "text")).strip()
        if not text:
            raise InputError("passage has no text", folder / "corpus.jsonl", line_no)
        corpus[str(row["_id"])] = text
    queries: dict[str, str] = {}
    for line_no, row in _read_jsonl(folder / "queries.jsonl"):
        text = str(row.get("text") or "").strip()
        if not text:
            raise InputError("query has no text", folder / "queries.jsonl", line_no)
        queries[str(row["_id"])] = text
    qrels_path = _pick_qrels(folder, split)
    qrels: dict[str, dict[str, int]] = {}
    with checked(qrels_path).open(encoding="utf-8-sig") as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if not line.strip() or (line_no == 1 and not _is_int(parts[-1])):
                continue  # header
            if len(parts) != 3 or not _is_int(parts[2]):
                raise InputError("expected 'query-id<TAB>corpus-id<TAB>integer score'", qrels_path, line_no)
            q, d, g = parts[0], parts[1], int(parts[2])
            if q not in queries:
                raise InputError(f"query id {q!r} is not in queries.jsonl", qrels_path, line_no)
            if d not in corpus:
                raise InputError(f"corpus id {d!r} is not in corpus.jsonl", qrels_path, line_no)
            qrels.setdefault(q, {})[d] = g
    return _finish(queries, corpus, qrels, str(folder), qrels_path)


def _is_int(text: str) -> bool:
    return bool(re.fullmatch(r"\s*-?\d+\s*", text))


def _pick_qrels(folder: Path, split: str | None) -> Path:
    qdir = folder / "qrels"
    if split is not None:
        path = qdir / f"{split}.tsv"
        if not path.is_file():
            raise InputError(f"no qrels file for split {split!r}", path)
        return path
    for name in QRELS_SPLITS:
        if (qdir / f"{name}.tsv").is_file():
            return qdir / f"{name}.tsv"
    found = sorted(qdir.glob("*.tsv")) if qdir.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise InputError("expected one qrels/<split>.tsv (e.g. qrels/test.tsv)" if not found else
                     f"several qrels files {[p.name for p in found]}; name the split", qdir)


def _pick_column(header: list[str], names: tuple[str, ...], what: str, path: Path) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise InputError(f"no {what} column (expected one of {list(names)}; found {header})", path, 1)


def _iter_table(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(1-based line, fields) of a TSV (split on tabs, no quoting: MS MARCO text has bare quotes) or CSV file."""
    if not path.is_file():
        raise InputError("file not found", path)
    with checked(path).open(encoding="utf-8-sig", newline="") as fh:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(fh)
            try:
                for fields in reader:
                    yield reader.line_num, fields
            except csv.Error as exc:
                raise InputError(f"malformed CSV ({exc})", path, reader.line_num) from None
        else:
            for line_no, line in enumerate(fh, start=1):
                yield line_no, line.rstrip("\r\n").split("\t")


def load_pairs(path: str | Path) -> EvalData:
    """Load (query, relevant passage) pairs from a TSV or CSV with a header.

    Columns: one of :data:`QUERY_COLUMNS` and one of :data:`PASSAGE_COLUMNS` (e.g. ``query_text``,
    ``gold_passage``). Ids are ``"q"``/``"d"`` + first 12 hex of sha1 of the text, so repeated texts merge: a query
    on several rows has several relevant passages (grade 1). A row with a missing or empty field is an
    :class:`InputError` naming its line.
    """
    path = Path(path)
    rows = iter(_iter_table(path))
    try:
        _, header = next(rows)
    except StopIteration:
        raise InputError("empty file", path) from None
    qi = _pick_column(header, QUERY_COLUMNS, "query", path)
    pi = _pick_column(header, PASSAGE_COLUMNS, "relevant-passage", path)
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for line_no, fields in rows:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputError(f"expected {len(header)} fields, found {len(fields)}", path, line_no)
        query, passage = fields[qi].strip(), fields[pi].strip()
        if not query or not passage:
            raise InputError(f"empty {'query' if not query else 'passage'}", path, line_no)
        q, d = short_id("q", query), short_id("d", passage)
        queries[q] = query
        corpus[d] = passage
        qrels.setdefault(q, {})[d] = 1
    return _finish(queries, corpus, qrels, str(path), path)


def load_eval(spec: str | Path, split: str | None = None) -> EvalData:
    """:func:`load_beir` for a folder, :func:`load_pairs` for a ``.tsv``/``.csv`` file."""
    path = Path(spec)
    if path.is_dir():
        return load_beir(path, split)
    if path.suffix.lower() in (".tsv", ".csv"):
        return load_pairs(path)
    if not path.exists():
        raise InputError("evaluation data not found", path)
    raise InputError("evaluation data must be a BEIR folder or a .tsv/.csv of query/passage pairs", path)


def subsample(data: EvalData, max_queries: int | None = None, max_passages: int | None = None,
              seed: int = SPLIT_SEED) -> EvalData:
    """A smaller evaluation set, seeded.

    Keeps a random ``max_queries`` of the queries, all their relevant passages, and random other passages as
    distractors until the corpus has ``max_passages`` passages (never fewer than the relevant ones kept).
    ``None`` keeps everything of that kind.
    """
    rng = np.random.default_rng(seed)
    qids = sorted(data.queries)
    if max_queries is not None and max_queries < len(qids):
        qids = sorted(rng.choice(qids, size=max_queries, replace=False).tolist())
    relevant = sorted({d for q in qids for d in data.qrels[q]})
    keep = set(relevant)
    if max_passages is None:
        keep = set(data.corpus)
    elif max_passages > len(keep):
        others = sorted(set(data.corpus) - keep)
        n_more = min(len(others), max_passages - len(keep))
        keep.update(rng.choice(others, size=n_more, replace=False).tolist() if n_more else [])
    corpus = {d: data.corpus[d] for d in sorted(keep)}
    queries = {q: data.queries[q] for q in qids}
    qrels = {q: dict(data.qrels[q]) for q in qids}
    return _finish(queries, corpus, qrels, data.name, None)


def split_from_triplets(triplets: pd.DataFrame, fraction: float = SPLIT_FRACTION,
                        seed: int = SPLIT_SEED) -> tuple[pd.DataFrame, EvalData]:
    """Hold out a seeded share of the queries (by ``query_id``) of a triplet table for evaluation.

    Returns (training triplets, evaluation set). ``ceil(fraction · #query_ids)`` query ids go to evaluation (at
    least 1, at most all but 1). The evaluation corpus is the held-out queries' positives; their negatives are left
    out so that no source's negatives are favoured by the test. Any training triplet whose normalised query text
    equals a held-out one (a different id for the same query) is also removed, so no query is in both.
    """
    if not 0 < fraction < 1:
        raise InputError(f"held-out fraction must be in (0, 1) (got {fraction})")
    ids = np.array(sorted(triplets["query_id"].astype(str).unique()))
    if len(ids) < 2:
        raise InputError("a held-out split needs at least 2 distinct queries in the training data")
    n_eval = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    rng = np.random.default_rng(seed)
    eval_ids = set(rng.choice(ids, size=n_eval, replace=False).tolist())
    held = triplets["query_id"].astype(str).isin(eval_ids)
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for qid, query, positive in triplets.loc[held, ["query_id", "query", "positive"]].itertuples(index=False):
        d = short_id("d", positive)
        queries[str(qid)] = query
        corpus[d] = positive
        qrels.setdefault(str(qid), {})[d] = 1
    data = _finish(queries, corpus, qrels, f"held-out split ({fraction:g} of queries, seed {seed})", None)
    train, _ = remove_eval_leaks(triplets.loc[~held], data)
    return train, data


def remove_eval_leaks(triplets: pd.DataFrame, data: EvalData | Mapping[str, str]) -> tuple[pd.DataFrame, LeakReport]:
    """Leak guard: drop every triplet whose :func:`normalise_query` text is an evaluation query.

    ``data`` is an :class:`EvalData` or a mapping of evaluation query ids to texts. Returns the kept triplets (same
    columns, original index) and a :class:`LeakReport` of what was removed.
    """
    texts = data.queries.values() if isinstance(data, EvalData) else data.values()
    keys = {normalise_query(t) for t in texts}
    norm = triplets["query"].astype(str).map(normalise_query)
    leaked = norm.isin(keys)
    by_source = (triplets.loc[leaked, "source"].astype(str).value_counts().sort_index().to_dict()
                 if "source" in triplets.columns else {})
    report = LeakReport(removed_triplets=int(leaked.sum()), removed_queries=int(norm[leaked].nunique()),
                        by_source={str(k): int(v) for k, v in by_source.items()})
    return triplets.loc[~leaked], report
