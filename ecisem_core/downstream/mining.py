"""Mine candidate negative sources from (query, positive) pairs and a passage pool.

Each strategy ranks the pool for every query, never returning the query's positive (a pool passage whose text is
the positive's, compared after whitespace folding), and keeps ``k`` negatives per query:

- ``bm25`` — the top k by BM25 (``bm25s``, Lucene variant, k1 = 1.5, b = 0.75, English stop words);
- ``dense`` — the top k by cosine under the selected encoder (the target encoder by default);
- ``bm25:LO-HI`` / ``dense:LO-HI`` — k drawn uniformly (seeded per query) from ranks LO..HI (1-based, inclusive),
  e.g. ``dense:10-50``: hard but past the ranks where unlabelled positives crowd (RocketQA, arXiv 2010.08191 §4.1);
- ``dense-percpos[:P]`` — positive-aware dense mining, NV-Retriever's TopK-PercPos (arXiv 2407.15831, §3.2):
  the top k among passages with s_qn < P · s_qp (P = 0.95 by default), s by the same encoder;
- ``random`` — k passages drawn uniformly (seeded per query);
- ``A+B`` — a 50/50 hybrid of two strategies: a seeded half of the queries (⌈n/2⌉) take A's negatives, the rest
  B's, so the hybrid has one strategy's negatives per query and both in equal shares.

Why not ``sentence_transformers.util.mine_hard_negatives``: it takes a ``datasets.Dataset`` (a package this
project does not ship) and a SentenceTransformer, and re-encodes everything on each call. Here the dense scores
come from the project's encoders (any of them, prompts included) through the embedding cache; the exact top-k is
cross-checked against ``sentence_transformers.util.semantic_search`` in the tests.

Ranking ties: scores are rounded to :data:`SCORE_DECIMALS` decimals and ties go to the lower pool index, so the
result does not depend on float noise.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.hashing import short_id
from tqdm.auto import tqdm
from ecisem_core.embed.texts import embed_texts
from ecisem_core.embed.encoders import TfidfLsaEncoder

if TYPE_CHECKING:
    from ecisem_core.io.evaldata import EvalData

SCORE_DECIMALS: int = 4
"""Scores are rounded to this many decimals before ranking; ties go to the lower pool index."""
BM25_STOPWORDS: str = "en"
"""Stop-word list of the BM25 tokenizer (``bm25s.tokenize``)."""
PERCPOS: float = 0.95
"""TopK-PercPos threshold: keep a negative only if s_qn < PERCPOS · s_qp (NV-Retriever, arXiv 2407.15831)."""
NEGATIVES_PER_QUERY: int = 1
"""k: negatives kept per query and strategy."""
SEED: int = 0
"""Seed of the random draws (random, rank ranges) and of the hybrids' query split."""
CHUNK: int = 512
"""Queries scored against the whole pool at once (bounds memory at CHUNK × pool floats)."""
STRATEGIES_HELP: str = (
    "bm25 | dense | bm25:LO-HI | dense:LO-HI | dense-percpos[:P] | random | A+B (50/50 hybrid of two strategies)")

_SPEC = re.compile(r"^(bm25|dense)(?::(\d+)-(\d+))?$|^(dense-percpos)(?::([0-9.]+))?$|^(random)$")


@dataclass(frozen=True)
class Strategy:
    """One mining strategy. ``ranker`` ∈ {bm25, dense, random}; ``lo``/``hi`` a 1-based rank range (None: top k);
    ``percpos`` the TopK-PercPos threshold (None: off); ``parts`` the two strategies of a hybrid."""

    spec: str
    ranker: str
    lo: int | None = None
    hi: int | None = None
    percpos: float | None = None
    parts: tuple["Strategy", ...] = ()

    @property
    def name(self) -> str:
        """Source name: the spec with ':' replaced by '_' (safe as a file name)."""
        return self.spec.replace(":", "_")

    @property
    def rankers(self) -> set[str]:
        return set().union(*(p.rankers for p in self.parts)) if self.parts else {self.ranker}


def parse_strategy(spec: str) -> Strategy:
    """A :class:`Strategy` from its spec (see the module docstring); a clear error for anything else.

    >>> parse_strategy("dense:10-50").lo, parse_strategy("dense-percpos").percpos
    (10, 0.95)
    """
    spec = spec.strip()
    if "+" in spec:
        parts = [p.strip() for p in spec.split("+")]
        if len(parts) != 2 or parts[0] == parts[1]:
            raise InputError(f"hybrid {spec!r}: give two different strategies, e.g. bm25+dense")
        return Strategy(spec, "hybrid", parts=tuple(parse_strategy(p) for p in parts))
    m = _SPEC.match(spec)
    if not m:
        raise InputError(f"unknown mining strategy {spec!r}; known: {STRATEGIES_HELP}")
    if m.group(1):
        lo, hi = (int(m.group(2)), int(m.group(3))) if m.group(2) else (None, None)
        if lo is not None and not 1 <= lo <= hi:
            raise InputError(f"strategy {spec!r}: the rank range needs 1 <= LO <= HI")
        return Strategy(spec, m.group(1), lo, hi)
    if m.group(4):
        p = float(m.group(5)) if m.group(5) else PERCPOS
        if not 0 < p <= 1:
            raise InputError(f"strategy {spec!r}: the TopK-PercPos threshold must be in (0, 1]")
        return Strategy(spec, "dense", percpos=p)
    return Strategy(spec, "random")


def fold(text: str) -> str:
    """Whitespace-folded text, the identity used to keep a query's positive out of its negatives."""
    return " ".join(str(text).split())


def excluded_columns(positives: Sequence[str], pool: Sequence[str]) -> list[np.ndarray]:
    """Per query, the pool indices whose folded text equals the folded positive (usually zero or one)."""
    where: dict[str, list[int]] = {}
    for j, t in enumerate(pool):
        where.setdefault(fold(t), []).append(j)
    return [np.asarray(where.get(fold(p), []), dtype=np.int64) for p in positives]


def masked(scores: np.ndarray, exclude: Sequence[np.ndarray], decimals: int = SCORE_DECIMALS) -> np.ndarray:
    """Scores rounded to ``decimals`` (float64), −inf at every excluded column of each row."""
    s = np.round(np.asarray(scores, dtype=np.float64), decimals)
    for i, ex in enumerate(exclude):
        s[i, ex] = -np.inf
    return s


def rank_rows(s: np.ndarray, depth: int) -> np.ndarray:
    """Per row of masked scores ``s`` (queries × pool, see :func:`masked`), the ``depth`` best columns, best first,
    ties to the lower column, never a −inf column; rows with fewer allowed columns are padded with −1.

    >>> rank_rows(masked(np.array([[0.3, 0.9, 0.30001, 0.1]]), [np.array([1])]), 2)
    array([[0, 2]])
    """
    depth = min(depth, s.shape[1])
    cut = -np.partition(-s, depth - 1, axis=1)[:, depth - 1]
    out = np.full((s.shape[0], depth), -1, dtype=np.int64)
    for i in range(s.shape[0]):
        cand = np.flatnonzero((s[i] >= cut[i]) & np.isfinite(s[i]))
        order = cand[np.lexsort((cand, -s[i, cand]))][:depth]
        out[i, : order.size] = order
    return out


def rank_of(s: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """1-based rank of column ``cols[i, j]`` in row i of masked scores ``s`` (ties to the lower column); NaN for
    −1 entries: 1 + #(higher score) + #(equal score at a lower column)."""
    out = np.full(cols.shape, np.nan)
    for i, j in zip(*np.nonzero(cols >= 0)):
        c = cols[i, j]
        v = s[i, c]
        out[i, j] = 1 + np.count_nonzero(s[i] > v) + np.count_nonzero(s[i, :c] == v)
    return out


def bm25_scores(queries: Sequence[str], passages: Sequence[str]) -> np.ndarray:
    """BM25 score of every passage for every query (queries × passages), ``bm25s`` defaults (Lucene, k1 = 1.5,
    b = 0.75), lower-cased word tokens, English stop words removed, no stemming."""
    return bm25_scorer(passages)(queries)


def bm25_scorer(passages: Sequence[str]) -> Callable[[Sequence[str]], np.ndarray]:
    """A function scoring queries against an indexed pool with BM25 (see :func:`bm25_scores`)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(passages), stopwords=BM25_STOPWORDS, show_progress=False),
                    show_progress=False)

    def score(queries: Sequence[str]) -> np.ndarray:
        tokens = bm25s.tokenize(list(queries), stopwords=BM25_STOPWORDS, return_ids=False, show_progress=False)
        return np.vstack([retriever.get_scores(t) for t in tokens]).astype(np.float64)

    return score


def query_rng(seed: int, query_id: str) -> np.random.Generator:
    """The per-query generator ``default_rng([seed, crc32(query_id)])``: a query's draw does not depend on others."""
    return np.random.default_rng([seed, zlib.crc32(query_id.encode("utf-8"))])


def random_negatives(query_ids: Sequence[str], n_pool: int, exclude: Sequence[np.ndarray], k: int,
                     seed: int = SEED) -> np.ndarray:
    """``k`` pool indices per query, uniform without replacement over the pool minus ``exclude[i]``."""
    out = np.full((len(query_ids), k), -1, dtype=np.int64)
    for i, qid in enumerate(query_ids):
        allowed = np.setdiff1d(np.arange(n_pool), exclude[i])
        take = min(k, allowed.size)
        out[i, :take] = allowed[query_rng(seed, qid).choice(allowed.size, size=take, replace=False)]
    return out


def draw_from_range(ranked: np.ndarray, query_ids: Sequence[str], lo: int, hi: int, k: int,
                    seed: int = SEED) -> np.ndarray:
    """``k`` of each row's ranks lo..hi (1-based), uniform without replacement, in rank order; −1 padded."""
    out = np.full((ranked.shape[0], k), -1, dtype=np.int64)
    for i, qid in enumerate(query_ids):
        window = ranked[i, lo - 1 : hi]
        window = window[window >= 0]
        take = min(k, window.size)
        pick = np.sort(query_rng(seed, qid).choice(window.size, size=take, replace=False))
        out[i, :take] = window[pick]
    return out


def hybrid_split(query_ids: Sequence[str], seed: int = SEED) -> np.ndarray:
    """True for the ⌈n/2⌉ queries that take the first part of a 50/50 hybrid (seeded, order-free)."""
    keys = np.array([zlib.crc32(f"{seed}:{q}".encode("utf-8")) for q in query_ids], dtype=np.int64)
    order = np.lexsort((np.arange(len(keys)), keys))
    first = np.zeros(len(keys), dtype=bool)
    first[order[: (len(keys) + 1) // 2]] = True
    return first


@dataclass
class MiningInput:
    """Queries with their positive, and the pool. ``query_ids`` identify queries (a query with several positives
    appears once per positive, with the same id)."""

    query_ids: list[str]
    queries: list[str]
    positives: list[str]
    pool: list[str]

    def __post_init__(self) -> None:
        if not (len(self.query_ids) == len(self.queries) == len(self.positives)):
            raise InputError("query ids, queries and positives differ in length")
        if not self.queries:
            raise InputError("no (query, positive) pairs to mine for")
        if not self.pool:
            raise InputError("the passage pool is empty")


DenseScorer = Callable[[Sequence[str], Sequence[str]], tuple[np.ndarray, np.ndarray]]
"""(queries, positives) → (cosine to every pool passage (queries × pool), cosine to the positive (queries,))."""


def mine(data: MiningInput, strategies: Sequence[Strategy], *, k: int = NEGATIVES_PER_QUERY,
         dense: DenseScorer | None = None, seed: int = SEED, chunk: int = CHUNK,
         progress: bool = False) -> pd.DataFrame:
    """Triplets of every strategy: columns query_id, query, positive, negative, negative_id, source, mined_rank
    (1-based rank in the strategy's ranking; NaN for random), mined_score (its BM25 or cosine score; NaN for
    random). A query whose pool has fewer than k allowed passages gets fewer triplets.

    ``dense`` scores queries against the pool (required when a strategy uses the dense ranker).
    """
    if k < 1:
        raise InputError(f"negatives per query must be >= 1 (got {k})")
    if not strategies:
        raise InputError("no mining strategy given")
    names = [s.name for s in strategies]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"strategy given twice: {dupes}")
    needed = set().union(*(s.rankers for s in strategies))
    if "dense" in needed and dense is None:
        raise InputError("a dense strategy needs an encoder")
    leaves = {p.spec: p for s in strategies for p in (s.parts or (s,))}
    exclude = excluded_columns(data.positives, data.pool)
    bm25 = bm25_scorer(data.pool) if "bm25" in needed else None
    depth = max([k] + [p.hi or k for p in leaves.values()])
    picks: dict[str, np.ndarray] = {spec: np.empty((0, k), np.int64) for spec in leaves}
    scores_of: dict[str, np.ndarray] = {spec: np.empty((0, k)) for spec in leaves}
    ranks_of: dict[str, np.ndarray] = {spec: np.empty((0, k)) for spec in leaves}
    n = len(data.queries)
    for start in tqdm(range(0, n, chunk), desc="mining", unit="chunk", disable=not progress):
        sl = slice(start, min(start + chunk, n))
        qids, qs, ex = data.query_ids[sl], data.queries[sl], exclude[sl]
        scored: dict[str, np.ndarray] = {}
        s_qp, s_raw = np.empty(0), np.empty(0)
        if bm25 is not None:
            scored["bm25"] = masked(bm25(qs), ex)
        if "dense" in needed:
            s_raw, s_qp = dense(qs, data.positives[sl])
            scored["dense"] = masked(s_raw, ex)
        ranked = {r: rank_rows(s, depth) for r, s in scored.items()}
        for spec, st in leaves.items():
            if st.ranker == "random":
                cols = random_negatives(qids, len(data.pool), ex, k, seed)
                sc = rk = np.full(cols.shape, np.nan)
            else:
                s = scored[st.ranker]
                if st.percpos is not None:  # TopK-PercPos: only passages below P · s_qp compete
                    over = s_raw >= st.percpos * np.asarray(s_qp, np.float64)[:, None]
                    cols = rank_rows(np.where(over, -np.inf, s), k)[:, :k]
                elif st.lo is not None:
                    cols = draw_from_range(ranked[st.ranker], qids, st.lo, st.hi, k, seed)
                else:
                    cols = ranked[st.ranker][:, :k]
                cols = np.pad(cols, ((0, 0), (0, k - cols.shape[1])), constant_values=-1)
                sc = np.where(cols >= 0, np.take_along_axis(s, np.maximum(cols, 0), axis=1), np.nan)
                rk = rank_of(s, cols)
            picks[spec] = np.vstack([picks[spec], cols])
            scores_of[spec] = np.vstack([scores_of[spec], sc])
            ranks_of[spec] = np.vstack([ranks_of[spec], rk])
    frames = []
    for st in strategies:
        if st.parts:
            first = hybrid_split(data.query_ids, seed)
            a, b = st.parts
            cols = np.where(first[:, None], picks[a.spec], picks[b.spec])
            sc = np.where(first[:, None], scores_of[a.spec], scores_of[b.spec])
            rk = np.where(first[:, None], ranks_of[a.spec], ranks_of[b.spec])
        else:
            cols, sc, rk = picks[st.spec], scores_of[st.spec], ranks_of[st.spec]
        frames.append(_rows(data, st.name, cols, sc, rk))
    return pd.concat(frames, ignore_index=True)


COLUMNS: tuple[str, ...] = ("query_id", "query", "positive", "negative", "negative_id", "source", "mined_rank",
                            "mined_score")
"""Columns of a mined triplet table, in order."""


def _rows(data: MiningInput, source: str, cols: np.ndarray, scores: np.ndarray, ranks: np.ndarray) -> pd.DataFrame:
    qi, slot = np.nonzero(cols >= 0)
    j = cols[qi, slot]
    negatives = [data.pool[x] for x in j]
    return pd.DataFrame({
        "query_id": [data.query_ids[i] for i in qi], "query": [data.queries[i] for i in qi],
        "positive": [data.positives[i] for i in qi], "negative": negatives,
        "negative_id": [short_id("n", t) for t in negatives], "source": source,
        "mined_rank": ranks[qi, slot], "mined_score": scores[qi, slot],
    }, columns=list(COLUMNS))


# ----------------------------------------------------------------------------------------------- inputs


def input_from_eval(pairs: "EvalData", pool: Sequence[str] | None = None) -> MiningInput:
    """(query, positive) pairs from an evaluation-style set (BEIR folder or pairs file: one pair per relevant
    passage), and the pool: ``pool`` when given, else that set's corpus."""
    qids, qs, ps = [], [], []
    for qid in sorted(pairs.qrels):
        for did in sorted(pairs.qrels[qid]):
            qids.append(qid)
            qs.append(pairs.queries[qid])
            ps.append(pairs.corpus[did])
    return MiningInput(qids, qs, ps, list(pool) if pool is not None else list(pairs.corpus.values()))


def input_from_triplets(triplets: pd.DataFrame, pool: Sequence[str]) -> MiningInput:
    """(query, positive) pairs of a triplet table (its negatives ignored; each pair once) and a pool."""
    t = triplets.drop_duplicates(["query", "positive"])
    qid = t["query_id"].astype(str) if "query_id" in t.columns else t["query"].astype(str).map(
        lambda q: short_id("q", q))
    return MiningInput(qid.tolist(), t["query"].astype(str).tolist(), t["positive"].astype(str).tolist(), list(pool))


def dense_scorer(encoder: Any, pool: Sequence[str], *, cache_dir: str | None = None, use_cache: bool = True,
                 progress: bool = False) -> DenseScorer:
    """Cosine scorer over ``pool`` under ``encoder`` (vectors through the embedding cache; TF-IDF/LSA is fitted on
    the pool first)."""

    if isinstance(encoder, TfidfLsaEncoder):
        encoder.fit(list(pool))
    kw = dict(cache_dir=cache_dir, use_cache=use_cache, show_progress=progress)
    pool_vecs = embed_texts(pool, "passage", encoder, **kw)

    def score(queries: Sequence[str], positives: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        q = embed_texts(queries, "query", encoder, **kw)
        p = embed_texts(positives, "passage", encoder, **kw)
        return q.astype(np.float64) @ pool_vecs.T.astype(np.float64), np.einsum("ij,ij->i", q, p, dtype=np.float64)

    return score


def mix_tables(a: pd.DataFrame, b: pd.DataFrame, name: str, seed: int = SEED) -> pd.DataFrame:
    """A 50/50 hybrid of two triplet tables by query, as in :func:`mine`: the queries (``query_id``) that
    :func:`hybrid_split` puts in the first half keep ``a``'s triplets, the others ``b``'s; ``source`` = name."""
    ids = sorted(set(a["query_id"].astype(str)) | set(b["query_id"].astype(str)))
    first = {q for q, f in zip(ids, hybrid_split(ids, seed)) if f}
    out = pd.concat([a[a["query_id"].astype(str).isin(first)], b[~b["query_id"].astype(str).isin(first)]],
                    ignore_index=True)
    return out.assign(source=name)
