"""Evaluation sets that can rank sources: a held-out split of the training queries whose corpus holds hard
distractors.

A split whose corpus is only the held-out positives is trivially easy (measured on the demo: nDCG@10 = 1.0 for
the untrained base and every source), so :func:`hard_split` adds, for every held-out query,

- its own negatives from every source (they were chosen to look relevant to it), and
- its top :data:`BM25_DISTRACTORS` BM25 neighbours among every other passage of the data (positives and negatives
  of the training queries),

as non-relevant passages. Assumed non-relevant, as in every mined-negative corpus: a false negative among them
makes the set a little harder, never easier.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ecisem_core.downstream.mining import bm25_scorer, masked, rank_rows
from ecisem_core.hashing import short_id
from ecisem_core.io.evaldata import SPLIT_FRACTION, SPLIT_SEED, EvalData, split_from_triplets

BM25_DISTRACTORS: int = 10
"""BM25 neighbours added per held-out query."""


def hard_split(triplets: pd.DataFrame, fraction: float = SPLIT_FRACTION, seed: int = SPLIT_SEED,
               k: int = BM25_DISTRACTORS) -> tuple[pd.DataFrame, EvalData]:
    """(training triplets, evaluation set): :func:`~ecisem_core.io.evaldata.split_from_triplets` with hard
    distractors added to the corpus (module docstring)."""
    train, data = split_from_triplets(triplets, fraction, seed)
    held = triplets[triplets["query_id"].astype(str).isin(set(data.queries))]
    relevant = {d for rel in data.qrels.values() for d in rel}
    corpus = dict(data.corpus)
    for text in held["negative"].astype(str):
        corpus.setdefault(short_id("d", text), text)
    others = pd.unique(pd.concat([train["positive"], train["negative"]]).astype(str))
    others = [t for t in others if short_id("d", t) not in corpus]
    if others and k > 0:
        qids = sorted(data.queries)
        scores = masked(bm25_scorer(others)([data.queries[q] for q in qids]), [np.array([], np.int64)] * len(qids))
        for row in rank_rows(scores, k):
            for j in row[row >= 0]:
                corpus.setdefault(short_id("d", others[j]), others[j])
    assert relevant <= set(corpus)
    name = f"{data.name} + hard distractors (own negatives, BM25 top {k})"
    return train, EvalData(data.queries, corpus, data.qrels, name=name)
