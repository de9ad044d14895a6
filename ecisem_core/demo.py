"""The bundled demo dataset: build it from our own text, and seed the embedding cache from its shipped vectors.

    python -m ecisem_core.demo build              # assets/demo/text/*.jsonl → demo_triplets.jsonl + embeddings
    python -m ecisem_core.demo seed-cache         # shipped vectors → embedding cache (first run needs no encoding)

**The text** (``assets/demo/text/<topic>.jsonl``, written for this project, no third-party text): 8 topics × 15
queries; each line is ``{query_id, topic, query, positive, llm_negatives[2-3], false_negatives[0-1],
distractors[2]}``. ``llm_negatives`` are LLM-style hard negatives written for the query (topically close,
plausible, not answering it); ``false_negatives`` are passages that *do* answer it; ``distractors`` are on-topic
passages written to answer no query.

**The pool** is every passage of every query: positives, llm negatives, false negatives and distractors
(668 passages for the shipped text).

**The sources** (K = :data:`K` negatives per query for the mined ones; a query's own positive is never mined):

* ``llm`` — the written ``llm_negatives`` of each query with its planted false negative among them;
* ``bm25`` — top-K of the pool by BM25 (``bm25s``, Lucene variant, English stop words, no stemming);
* ``dense`` — top-K of the pool by cosine similarity under the default encoder (all-MiniLM-L6-v2);
* ``random`` — K passages of the pool drawn uniformly without replacement (seeded per query);
* hybrids :data:`HYBRIDS` — 50/50 mixtures built by :func:`ecisem_core.downstream.hybrid.add_hybrids`; a negative that
  both parts found for the same query is kept once.

**Labels** (``fn_label``): 1 when the negative is one of the query's planted false negatives, else 0. A mined
passage that belongs to another query (its positive, negatives or distractors) is *assumed* not relevant to this
query: the queries were written to ask different things and the distractors to answer none of them. That
assumption is not checked passage by passage, so a label of 0 on a mined row means "not planted", not "judged".

**Determinism.** Scores are rounded to :data:`SCORE_DECIMALS` decimals and ties broken by pool order, queries are
processed in ``query_id`` order, the random source uses a generator seeded by (:data:`SEED`, crc32(query_id)),
and the output is sorted by (source, query_id, negative_id). Float noise of the encoder between runs (≈1e-7) is
far below the rounding step, so the rebuilt file is byte-identical unless a similarity lands within that noise
of a rounding boundary at a top-K cut (the build reports the smallest margin at the cut).

**Shipped vectors** (``demo_embeddings.npz``, the precomputed format of :mod:`ecisem_core.embed.precomputed`, +
``demo_embeddings.json`` naming the encoder's ``model_id``): the default encoder's vectors of every query and
pool passage. :func:`seed_cache` copies them into the embedding cache under ``default_encoder().model_id``
when that id matches, so the dashboard's first run on the demo encodes nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.downstream import mining
from ecisem_core.errors import InputError
from ecisem_core.hashing import short_id, text_hashes
from ecisem_core.io.jsonl import iter_jsonl
from ecisem_core.embed.encoders import default_encoder
from ecisem_core.downstream.hybrid import add_hybrids
from ecisem_core.embed.precomputed import write_embeddings
from ecisem_core.io.load import read_triplets
from ecisem_core.embed.cache import EmbeddingCache, default_cache_root
from ecisem_core.embed.precomputed import read_embeddings

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "assets" / "demo"
"""Folder of the demo (in the project checkout: the package is installed editable)."""
TEXT_DIR = DEMO_DIR / "text"
TRIPLETS_NAME = "demo_triplets.jsonl"
EMBEDDINGS_NAME = "demo_embeddings.npz"
EMBEDDINGS_META_NAME = "demo_embeddings.json"
TRIPLETS_PATH = DEMO_DIR / TRIPLETS_NAME
"""The built demo triplet table (ships with the project)."""
EMBEDDINGS_PATH = DEMO_DIR / EMBEDDINGS_NAME
"""The default encoder's vectors of every demo text (ships with the project)."""

K: int = 3
"""Negatives per query mined by ``bm25``, ``dense`` and ``random`` (the written ``llm`` source has 2–4)."""
SEED: int = 0
"""Seed of the random source and of the hybrids' equal-share selection."""
HYBRIDS: tuple[str, ...] = ("bm25+dense", "bm25+llm", "dense+llm")
"""Hybrid sources (equal shares of their parts), the three pairs of the paper's Table 1."""
SCORE_DECIMALS: int = mining.SCORE_DECIMALS
"""BM25 scores and cosines are rounded to this many decimals before ranking; ties go to pool order."""
COLUMNS: tuple[str, ...] = ("query_id", "query", "positive", "negative", "source", "negative_id", "fn_label",
                            "topic")
"""Columns of ``demo_triplets.jsonl``, in order."""
SORT_KEYS: list[str] = ["source", "query_id", "negative_id"]
RECORD_KEYS: tuple[str, ...] = ("query_id", "topic", "query", "positive", "llm_negatives", "false_negatives",
                                "distractors")
"""Keys of one line of the demo text."""
LIST_SIZES: dict[str, tuple[int, int]] = {"llm_negatives": (2, 3), "false_negatives": (0, 1), "distractors": (2, 2)}
"""Allowed (min, max) number of passages per list in one line of the demo text."""


# ----------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class DemoQuery:
    query_id: str
    topic: str
    query: str
    positive: str
    llm_negatives: tuple[str, ...]
    false_negatives: tuple[str, ...]
    distractors: tuple[str, ...]


def _check_text(value: Any, what: str, path: Path, line: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{what} must be a non-empty string (got {value!r:.60})", path, line)
    return value


def read_text(folder: str | Path = TEXT_DIR) -> list[DemoQuery]:
    """Every query of the demo text, sorted by ``query_id``.

    Raises:
        InputError: no ``*.jsonl`` file, a line that is not a JSON object with exactly :data:`RECORD_KEYS`, a
            non-string or empty text, a list of the wrong size (:data:`LIST_SIZES`), a duplicate ``query_id``
            or a passage text used twice (each pool passage must be unique) — naming file and line.
    """
    folder = Path(folder)
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise InputError("no *.jsonl files of demo text", folder)
    out: dict[str, DemoQuery] = {}
    seen: dict[str, tuple[Path, int]] = {}
    for path in files:
        for line, rec in iter_jsonl(path):
            if not isinstance(rec, dict) or set(rec) != set(RECORD_KEYS):
                got = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
                raise InputError(f"expected an object with keys {list(RECORD_KEYS)}, got {got}", path, line)
            lists = {}
            for key, (lo, hi) in LIST_SIZES.items():
                v = rec[key]
                if not isinstance(v, list) or not lo <= len(v) <= hi:
                    raise InputError(f"{key} must be a list of {lo}–{hi} passages (got {v!r:.60})", path, line)
                lists[key] = tuple(_check_text(t, f"{key}[{i}]", path, line) for i, t in enumerate(v))
            q = DemoQuery(
                query_id=_check_text(rec["query_id"], "query_id", path, line),
                topic=_check_text(rec["topic"], "topic", path, line),
                query=_check_text(rec["query"], "query", path, line),
                positive=_check_text(rec["positive"], "positive", path, line),
                **lists,
            )
            if q.query_id in out:
                raise InputError(f"duplicate query_id {q.query_id!r}", path, line)
            for text in (q.positive, *q.llm_negatives, *q.false_negatives, *q.distractors):
                if text in seen:
                    first = seen[text]
                    raise InputError(f"passage already used at {first[0]}, line {first[1]}: {text[:60]!r}",
                                     path, line)
                seen[text] = (path, line)
            out[q.query_id] = q
    return [out[k] for k in sorted(out)]


@dataclass(frozen=True)
class Pool:
    """Every passage of the demo: ``texts[j]``, the query that wrote it (``owner[j]``) and its role there
    (``kind[j]`` ∈ positive, llm, false_negative, distractor)."""

    texts: list[str]
    owner: list[str]
    kind: list[str]

    def positive_index(self) -> dict[str, int]:
        return {o: j for j, (o, k) in enumerate(zip(self.owner, self.kind)) if k == "positive"}


def build_pool(queries: list[DemoQuery]) -> Pool:
    """The pool in a fixed order: per query (sorted by id) its positive, llm negatives, false negatives,
    distractors."""
    texts, owner, kind = [], [], []
    for q in queries:
        for k, items in (("positive", (q.positive,)), ("llm", q.llm_negatives),
                         ("false_negative", q.false_negatives), ("distractor", q.distractors)):
            for t in items:
                texts.append(t)
                owner.append(q.query_id)
                kind.append(k)
    return Pool(texts, owner, kind)


# ----------------------------------------------------------------------------------------------- mining


def top_k_excluding(scores: np.ndarray, exclude: np.ndarray, k: int, decimals: int = SCORE_DECIMALS) -> np.ndarray:
    """Per row of ``scores`` (queries × pool), the column indices of the ``k`` best scores, best first, never the
    column ``exclude[row]`` (:func:`~ecisem_core.downstream.mining.rank_rows`: rounded to ``decimals``, ties to the
    lower column).

    >>> top_k_excluding(np.array([[0.3, 0.9, 0.30001, 0.1]]), np.array([1]), 2)
    array([[0, 2]])
    """
    return mining.rank_rows(mining.masked(scores, [np.array([e]) for e in exclude], decimals), k)


def cut_margins(scores: np.ndarray, exclude: np.ndarray, k: int, decimals: int = SCORE_DECIMALS) -> np.ndarray:
    """Per row, the unrounded gap between the k-th and (k+1)-th best scores (excluding ``exclude[row]``): how
    far the top-k cut is from a tie. Run-to-run float noise can only change the selection where this is tiny."""
    s = np.asarray(scores, dtype=np.float64).copy()
    s[np.arange(s.shape[0]), exclude] = -np.inf
    part = -np.sort(-s, axis=1)[:, : k + 1]
    return part[:, k - 1] - part[:, k]


bm25_scores = mining.bm25_scores


def random_negatives(query_ids: list[str], n_pool: int, exclude: np.ndarray, k: int, seed: int = SEED) -> np.ndarray:
    """``k`` pool indices per query, uniform without replacement, never ``exclude[i]``
    (:func:`~ecisem_core.downstream.mining.random_negatives`)."""
    return mining.random_negatives(query_ids, n_pool, [np.array([e]) for e in exclude], k, seed)


def encode_texts(texts: list[str], encoder: Any = None) -> np.ndarray:
    """L2-normalised vectors of ``texts`` under ``encoder`` (default: the offline default encoder), encoded in
    the given order (fixed batches, so repeated runs see the same numerics)."""
    if encoder is None:
        encoder = default_encoder()
    return np.asarray(encoder.encode(texts, "passage"), dtype=np.float32)


# ----------------------------------------------------------------------------------------------- build


@dataclass
class DemoBuild:
    """The built table, the vectors of every demo text (``texts[i]`` ↔ ``vectors[i]``) and figures."""

    triplets: pd.DataFrame
    texts: list[str]
    vectors: np.ndarray
    model_id: str
    stats: dict[str, Any] = field(default_factory=dict)


def _rows(source: str, queries: list[DemoQuery], pool: Pool, picks: list[list[int]]) -> list[dict[str, Any]]:
    rows = []
    for q, cols in zip(queries, picks):
        planted = set(q.false_negatives)
        for j in cols:
            text = pool.texts[j]
            rows.append({"query_id": q.query_id, "query": q.query, "positive": q.positive, "negative": text,
                         "source": source, "negative_id": short_id("n", text), "fn_label": int(text in planted),
                         "topic": q.topic})
    return rows


def build(text_dir: str | Path = TEXT_DIR, encoder: Any = None, *, vectors: np.ndarray | None = None,
          k: int = K, seed: int = SEED, hybrids: tuple[str, ...] = HYBRIDS) -> DemoBuild:
    """Mine every source of the demo from its text (see the module docstring).

    Args:
        text_dir: folder of ``<topic>.jsonl`` files.
        encoder: encoder of the ``dense`` source (default: the offline default encoder).
        vectors: precomputed vectors of ``queries + pool`` in build order instead of encoding (for tests that
            vary other parts; the shipped file is built with the real encoder).
        k: negatives per query of the mined sources.
        seed: seed of ``random`` and of the hybrids.
        hybrids: hybrid specs ``"a+b"``.
    """
    queries = read_text(text_dir)
    pool = build_pool(queries)
    pos = pool.positive_index()
    exclude = np.array([pos[q.query_id] for q in queries], dtype=np.int64)
    qtexts = [q.query for q in queries]
    qids = [q.query_id for q in queries]

    texts = qtexts + pool.texts
    if vectors is None:
        if encoder is None:
            encoder = default_encoder()
        vectors = encode_texts(texts, encoder)
        model_id = encoder.model_id
    else:
        model_id = getattr(encoder, "model_id", "given-vectors")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.shape[0] != len(texts):
        raise InputError(f"expected {len(texts)} vectors (queries + pool), got {vectors.shape[0]}")
    nq = len(queries)
    cos = vectors[:nq].astype(np.float64) @ vectors[nq:].astype(np.float64).T
    bm = bm25_scores(qtexts, pool.texts)

    llm_picks = []
    for q in queries:
        own = [j for j, o in enumerate(pool.owner) if o == q.query_id and pool.kind[j] in ("llm", "false_negative")]
        llm_picks.append(own)
    rows = _rows("llm", queries, pool, llm_picks)
    rows += _rows("bm25", queries, pool, top_k_excluding(bm, exclude, k).tolist())
    rows += _rows("dense", queries, pool, top_k_excluding(cos, exclude, k).tolist())
    rows += _rows("random", queries, pool, random_negatives(qids, len(pool.texts), exclude, k, seed).tolist())
    base = pd.DataFrame(rows, columns=list(COLUMNS))
    table = add_hybrids(base, list(hybrids), seed=seed)
    table = table.drop_duplicates(["source", "query_id", "negative_id"])  # mined by both parts of a hybrid
    table = table.sort_values(SORT_KEYS, kind="stable").reset_index(drop=True)[list(COLUMNS)]

    per_source = table.groupby("source").agg(rows=("fn_label", "size"), planted_fn=("fn_label", "sum"))
    stats = {
        "queries": nq, "topics": len({q.topic for q in queries}), "pool": len(pool.texts),
        "planted_false_negatives": sum(len(q.false_negatives) for q in queries), "k": k,
        "rows": int(len(table)),
        "per_source": {s: {"rows": int(r.rows), "fn_label_1": int(r.planted_fn)} for s, r in per_source.iterrows()},
        "min_cut_margin_bm25": float(cut_margins(bm, exclude, k).min()),
        "min_cut_margin_dense": float(cut_margins(cos, exclude, k).min()),
    }
    return DemoBuild(table, texts, vectors, model_id, stats)


def to_jsonl(table: pd.DataFrame) -> str:
    """The table as JSON lines, keys in :data:`COLUMNS` order, UTF-8 text kept as is."""
    lines = []
    for rec in table[list(COLUMNS)].itertuples(index=False):
        d = dict(zip(COLUMNS, rec))
        d["fn_label"] = int(d["fn_label"])
        lines.append(json.dumps(d, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def write(result: DemoBuild, out_dir: str | Path = DEMO_DIR) -> dict[str, Path]:
    """Write ``demo_triplets.jsonl``, ``demo_embeddings.npz`` and ``demo_embeddings.json`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"triplets": out / TRIPLETS_NAME, "embeddings": out / EMBEDDINGS_NAME,
             "meta": out / EMBEDDINGS_META_NAME}
    paths["triplets"].write_text(to_jsonl(result.triplets), encoding="utf-8", newline="\n")
    write_embeddings(paths["embeddings"], text_hashes(result.texts), result.vectors)
    meta = {"model_id": result.model_id, "dim": int(result.vectors.shape[1]), "texts": len(result.texts)}
    paths["meta"].write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return paths


# ----------------------------------------------------------------------------------------------- cache


def load_demo(path: str | Path = TRIPLETS_PATH) -> pd.DataFrame:
    """The shipped demo as a triplet table (through the project's loader)."""
    return read_triplets([path]).triplets


@dataclass
class SeedResult:
    stored: int
    already: int
    skipped: str = ""


def seed_cache(cache_dir: str | Path | None = None, embeddings: str | Path = EMBEDDINGS_PATH,
               model_id: str | None = None) -> SeedResult:
    """Copy the shipped demo vectors into the embedding cache under the default encoder's ``model_id``.

    Only vectors not cached yet are stored (idempotent). Nothing is stored — ``skipped`` says why — when the
    vectors were made by another encoder version than the installed default (their ``demo_embeddings.json``
    names a different ``model_id``): then the first run encodes the demo itself.
    """

    emb = Path(embeddings)
    if model_id is None:
        model_id = default_encoder().model_id
    meta_path = emb.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the encoder id of the shipped vectors ({exc})", meta_path) from None
    if meta.get("model_id") != model_id:
        return SeedResult(0, 0, f"shipped vectors are from {meta.get('model_id')!r}, the default encoder is "
                                f"{model_id!r}; the demo will be encoded on first use")
    hashes, matrix = read_embeddings(emb)
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_root(), model_id)
    _, found = cache.lookup(hashes)
    missing = np.flatnonzero(~found)
    cache.store([hashes[i] for i in missing], matrix[missing])
    return SeedResult(int(missing.size), int(found.sum()))


# ----------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ecisem_core.demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="mine the demo sources from assets/demo/text (uses the default encoder)")
    b.add_argument("--text", default=str(TEXT_DIR), help="folder of demo text (default: %(default)s)")
    b.add_argument("--out", default=str(DEMO_DIR), help="output folder (default: %(default)s)")
    s = sub.add_parser("seed-cache", help="copy the shipped demo vectors into the embedding cache")
    s.add_argument("--cache-dir", default=None, help="cache root (default: $ECISEM_CACHE_DIR or ./.ecisem_cache)")
    s.add_argument("--embeddings", default=str(EMBEDDINGS_PATH), help="vectors file (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        if args.cmd == "build":
            result = build(args.text)
            paths = write(result, args.out)
            print(json.dumps(result.stats, indent=2))
            print("wrote " + ", ".join(str(v) for v in paths.values()), file=sys.stderr)
        else:
            r = seed_cache(args.cache_dir, args.embeddings)
            if r.skipped:
                print(f"demo cache not seeded: {r.skipped}", file=sys.stderr)
            else:
                print(f"demo embedding cache: {r.stored} vectors stored, {r.already} already cached",
                      file=sys.stderr)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
