"""Retrieval metrics and evaluation of an encoder on an evaluation set (exact cosine over the whole corpus).

nDCG@k (Järvelin & Kekäläinen 2002, linear gain), MRR@k and Recall@k per query, averaged over queries, as in BEIR
(Thakur et al., arXiv 2104.08663, §4).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecisem_core.io.evaldata import EvalData

NDCG_K: int = 10
MRR_K: int = 10
RECALL_K: int = 100
METRICS: tuple[str, ...] = ("ndcg10", "mrr10", "recall100")
"""Metric keys: nDCG@10, MRR@10, Recall@100."""
ENCODE_BATCH_SIZE: int = 64
"""Texts per forward pass when encoding the evaluation queries and corpus."""


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores of each row, best first (ties: lower index first), shape (Q, min(k, D))."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def dcg(gains: np.ndarray) -> np.ndarray:
    """Discounted cumulative gain of ranked gains (Q, k): DCG = Σ_{i=1..k} g_i / log2(i + 1) (linear gain)."""
    discounts = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    return gains @ discounts


def ndcg_at_k(ranked_gains: np.ndarray, all_gains: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per query = DCG@k of the ranking / DCG@k of the ideal ranking (gains sorted descending).

    ``ranked_gains`` (Q, ≥k) are the grades of the retrieved passages in rank order; ``all_gains`` (Q, D) the grades
    of every corpus passage. Queries with no relevant passage get 0.
    """
    ideal = -np.sort(-all_gains, axis=1)[:, :k]
    idcg = dcg(ideal)
    got = dcg(ranked_gains[:, :k])
    return np.divide(got, idcg, out=np.zeros_like(got, dtype=float), where=idcg > 0)


def mrr_at_k(ranked_relevant: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank per query: 1 / (rank of the first relevant passage) if it is within the top k, else 0."""
    hits = ranked_relevant[:, :k]
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def recall_at_k(ranked_relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k per query = |relevant ∩ top k| / |relevant| (0 when a query has no relevant passage)."""
    got = ranked_relevant[:, :k].sum(axis=1).astype(float)
    return np.divide(got, n_relevant, out=np.zeros_like(got), where=n_relevant > 0)


def gain_matrix(data: EvalData) -> tuple[list[str], list[str], np.ndarray]:
    """(query ids, passage ids, grades (Q, D) float64) of an evaluation set, ids in sorted order."""
    qids, dids = sorted(data.queries), sorted(data.corpus)
    col = {d: j for j, d in enumerate(dids)}
    gains = np.zeros((len(qids), len(dids)))
    for i, q in enumerate(qids):
        for d, g in data.qrels[q].items():
            gains[i, col[d]] = g
    return qids, dids, gains


def retrieval_metrics(scores: np.ndarray, gains: np.ndarray) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and Recall@100 over queries.

    ``scores`` (Q, D): similarity of every query to every passage (here: exact cosine); ``gains`` (Q, D): relevance
    grades (0 = not relevant). Ranking: descending score, ties broken by passage order.
    """
    ranked = top_k(scores, max(NDCG_K, MRR_K, RECALL_K))
    ranked_gains = np.take_along_axis(gains, ranked, axis=1)
    relevant = ranked_gains > 0
    n_relevant = (gains > 0).sum(axis=1)
    return {
        "ndcg10": float(ndcg_at_k(ranked_gains, gains, NDCG_K).mean()),
        "mrr10": float(mrr_at_k(relevant, MRR_K).mean()),
        "recall100": float(recall_at_k(relevant, n_relevant, RECALL_K).mean()),
    }


def encode(model: Any, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings (rows) of ``texts``."""
    import torch

    with torch.inference_mode():
        vectors = model.encode(list(texts), batch_size=ENCODE_BATCH_SIZE, show_progress_bar=progress,
                               convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float32)


def evaluate_model(model: Any, data: EvalData, progress: bool = False) -> dict[str, float]:
    """Encode the evaluation queries and corpus with ``model`` and return :func:`retrieval_metrics` on exact cosine
    scores (dot products of L2-normalised embeddings) of every query against every passage."""
    qids, dids, gains = gain_matrix(data)
    q = encode(model, [data.queries[i] for i in qids], progress)
    d = encode(model, [data.corpus[i] for i in dids], progress)
    return retrieval_metrics(q @ d.T, gains)
