"""A review queue that learns: which unjudged triplets to send to the annotators next, and an offline simulation
of the whole loop (its learning curve).

**Selection** (:func:`next_items`). After each batch of verdicts the learned scorer
(:func:`ecisem_core.curation.fn_model.train_fn_model`) is retrained and gives every triplet p = P(false
negative). The next batch of ``k`` unjudged items is

* ``round(mix · k)`` *top-scored* items (highest p: the ones most worth removing from the training file, and the
  ones that keep false negatives coming when they are rare), then
* ``round(explore · k)`` items drawn at random from the rest (exploration: uncertainty sampling alone only
  looks where the current model already draws its boundary, and a random share keeps the verdicts an unbiased
  sample of the table too), then
* the rest by **uncertainty sampling**: the items whose p is closest to ½, where the current model is least sure
  (Lewis & Gale, "A sequential algorithm for training text classifiers", SIGIR 1994). Labelling them moves the
  decision boundary most per verdict.

The defaults (:data:`MIX` = :data:`EXPLORE` = 0.25, so half the batch is uncertainty sampling) were chosen on the
learning curves of ``benchmarks/bench_learning_curve.py`` (the demo, MED and CISI; held-out AUC, 5 seeds): the
variants with 0–0.5 top and 0–0.5 random share ended within noise of each other there, and this one finds more
false negatives per verdict than pure uncertainty while keeping a random share.

Before a model exists (fewer than ``N_MIN`` verdicts of a class) there is no p: the **cold start** takes
``round(cold_top · k)`` items with the highest hand-set ``fn_score`` (so false negatives appear early even when
they are a few percent of the table) and spreads the rest over the ``fn_score`` range (one random item per
quantile stratum of the unjudged items), so true negatives of every kind appear too (:data:`COLD_STARTS`).

Ties (equal p or fn_score) are broken by a permutation drawn from ``seed``: the same inputs and seed give the same
batch. An *item* is a (query_id, negative_id) pair, as in the annotation store: rows of several sources that
share one are one item, offered once (its first row).

**Simulation** (:func:`simulate_queue`): an annotator who answers from known labels, batch after batch, in one of
the :data:`ORDERS` (``random``; ``top`` = highest fn_score first, the list order of the review page;
``uncertainty`` = :func:`next_items`). At each checkpoint the learned scorer is trained on the verdicts so far and
scored by ROC AUC on the items not judged yet (what the queue will still show; biased by the order) and on a fixed
held-out set never offered (unbiased), next to its cross-validated AUC and the hand-set fn_score's AUC.

    keys = judged_keys(all_verdicts(store))                     # items already answered
    model = train_from_verdicts(table, verdicts)                # or None (NotEnoughVerdicts)
    probs = model.predict(table) if model else None
    batch = next_items(table, probs, keys, k=20)                # rows of table, with queue_reason
    send_to_batch(store, batch, "queue round 3")
"""
from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from ecisem_core.curation.baselines import roc_auc
from ecisem_core.curation.fn_model import (
    N_MIN,
    FnModel,
    NotEnoughVerdicts,
    model_features,
    predict,
    train_fn_model,
)
from ecisem_core.curation.fn_score import flag_triplets
from ecisem_core.errors import InputError

BATCH_SIZE: int = 20
"""Items per queue batch (the model retrains after each)."""
MIX: float = 0.25
"""Share of each batch taken from the top-scored unjudged items; the rest is uncertainty sampling."""
EXPLORE: float = 0.25
"""Share of each batch drawn at random from the unjudged items (exploration); the rest is uncertainty sampling."""
COLD_TOP: float = 0.5
"""Cold start (no model yet): share of the batch taken from the top of ``fn_score``; the rest is stratified."""
COLD_STARTS: tuple[str, ...] = ("top+stratified", "stratified", "top", "random")
"""``top+stratified`` (default): :data:`COLD_TOP` of the batch by highest fn_score, the rest one random item per
fn_score quantile stratum; ``stratified``: all stratified; ``top``: highest fn_score; ``random``: uniform."""
COLD_START: str = "top+stratified"
ORDERS: tuple[str, ...] = ("random", "top", "uncertainty")
"""Judging orders :func:`simulate_queue` compares."""
CHECKPOINTS: tuple[int, ...] = (20, 40, 60, 80, 100, 150, 200)
"""Numbers of verdicts at which :func:`simulate_queue` measures the scorer."""
REASONS: dict[str, str] = {
    "uncertain": "the learned scorer is least sure (p closest to 0.5)",
    "top": "highest learned P(false negative)",
    "random": "drawn at random (exploration)",
    "cold-top": "highest fn_score (no learned scorer yet)",
    "cold-spread": "spread over the fn_score range (no learned scorer yet)",
    "cold-random": "random (no learned scorer yet)",
}
"""``queue_reason`` codes of :func:`next_items` → words."""
_SEP = "\x00"


def item_keys(table: pd.DataFrame) -> np.ndarray:
    """``query_id + "\\x00" + negative_id`` per row (the key :func:`~ecisem_core.curation.fn_model.labels_from_verdicts`
    matches verdicts on).

    >>> item_keys(pd.DataFrame({"query_id": ["q1"], "negative_id": ["n7"]})).tolist()
    ['q1\\x00n7']
    """
    missing = [c for c in ("query_id", "negative_id") if c not in table.columns]
    if missing:
        raise InputError(f"the triplet table lacks column(s) {missing} that name its items")
    return (table["query_id"].astype(str) + _SEP + table["negative_id"].astype(str)).to_numpy(dtype=object)


def judged_keys(verdicts: pd.DataFrame) -> set[str]:
    """Keys of every item with at least one current verdict (any verdict, "unsure" too: it was seen), from rows of
    :func:`ecisem_core.curation.review.all_verdicts` / :meth:`AnnotationStore.verdicts`."""
    if verdicts is None or len(verdicts) == 0:
        return set()
    return set(item_keys(verdicts).tolist())


def _tiebreak(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n)


def _fn_scores(table: pd.DataFrame) -> np.ndarray:
    if "fn_score" in table.columns:
        return table["fn_score"].to_numpy(dtype=np.float64)
    return flag_triplets(table)["fn_score"].to_numpy(dtype=np.float64)


def _top(scores: np.ndarray, cand: np.ndarray, n: int, tie: np.ndarray) -> np.ndarray:
    """The ``n`` candidates (positions) with the highest score, ties by ``tie``."""
    if n <= 0 or cand.size == 0:
        return cand[:0]
    order = np.lexsort((tie[cand], -scores[cand]))
    return cand[order[:n]]


def _stratified(scores: np.ndarray, cand: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """One random candidate from each of ``n`` equal-count strata of the candidates sorted by score (highest
    first)."""
    if n <= 0 or cand.size == 0:
        return cand[:0]
    n = min(n, cand.size)
    ranked = cand[np.argsort(-scores[cand], kind="stable")]
    return np.array([s[rng.integers(s.size)] for s in np.array_split(ranked, n)], dtype=np.int64)


def next_items(
    table: pd.DataFrame,
    probs: np.ndarray | None,
    judged: Collection[str],
    k: int = BATCH_SIZE,
    mix: float = MIX,
    seed: int = 0,
    cold_start: str = COLD_START,
    cold_top: float = COLD_TOP,
    explore: float = EXPLORE,
) -> pd.DataFrame:
    """The next ``k`` items to judge (all remaining ones when fewer are left), as rows of ``table``.

    Args:
        table: triplet table with ``query_id``, ``negative_id`` and ``fn_score`` (computed by
            :func:`~ecisem_core.curation.fn_score.flag_triplets` when absent). Rows sharing a key are one item.
        probs: the learned scorer's P(false negative) per row of ``table`` (``FnModel.predict(table)``), or
            ``None`` before a model exists (cold start).
        judged: keys (:func:`item_keys`, :func:`judged_keys`) of items never to offer again.
        k: batch size.
        mix: with a model, share of the batch taken from the highest p; the rest are the p closest to ½
            (uncertainty sampling, Lewis & Gale 1994). 0 = pure uncertainty, 1 = pure top-scored.
        seed: seeds the tie-break and the cold start's draws (same inputs and seed → same batch).
        cold_start: one of :data:`COLD_STARTS` (used only when ``probs`` is None).
        cold_top: share of a ``top+stratified`` cold-start batch taken from the highest fn_score.
        explore: with a model, share of the batch drawn uniformly at random from the unjudged items (after the
            top-scored ones; the rest is uncertainty sampling).

    Returns:
        ``table.loc`` of the chosen rows (one per item, index kept), in queue order, with ``queue_reason`` (a key
        of :data:`REASONS`) and ``queue_p`` (p, NaN at cold start).

    >>> t = pd.DataFrame({"query_id": ["a", "b", "c", "d"], "negative_id": ["n"] * 4, "fn_score": [0.1] * 4})
    >>> next_items(t, np.array([0.1, 0.48, 0.9, 0.55]), set(), k=2, mix=0.0, explore=0.0)["query_id"].tolist()
    ['b', 'd']
    >>> next_items(t, np.array([0.1, 0.48, 0.9, 0.55]), {"b\\x00n"}, k=2, mix=0.5, explore=0.0)["queue_reason"].tolist()
    ['top', 'uncertain']
    """
    if k < 0:
        raise InputError(f"the batch size must be ≥ 0 (got {k})")
    if not (0.0 <= mix <= 1.0 and 0.0 <= cold_top <= 1.0 and 0.0 <= explore <= 1.0 and mix + explore <= 1.0):
        raise InputError(f"mix, explore and cold_top are shares in [0, 1], mix + explore ≤ 1 (got {mix}, {explore}, "
                         f"{cold_top})")
    if cold_start not in COLD_STARTS:
        raise InputError(f"unknown cold start {cold_start!r}; use one of {list(COLD_STARTS)}")
    keys = item_keys(table)
    first = ~pd.Series(keys).duplicated().to_numpy()
    done = np.fromiter((key in judged for key in keys), dtype=bool, count=len(keys)) if len(judged) else \
        np.zeros(len(keys), dtype=bool)
    cand = np.flatnonzero(first & ~done)
    tie = _tiebreak(len(table), seed)
    rng = np.random.default_rng([seed, 1])
    n = min(k, cand.size)
    if probs is None:
        p = np.full(len(table), np.nan)
        score = _fn_scores(table)
        if cold_start == "random":
            picks = [(rng.permutation(cand)[:n], "cold-random")]
        elif cold_start == "top":
            picks = [(_top(score, cand, n, tie), "cold-top")]
        else:
            n_top = int(round(cold_top * n)) if cold_start == "top+stratified" else 0
            top = _top(score, cand, n_top, tie)
            rest = np.setdiff1d(cand, top, assume_unique=True)
            picks = [(top, "cold-top"), (_stratified(score, rest, n - top.size, rng), "cold-spread")]
    else:
        p = np.asarray(probs, dtype=np.float64)
        if p.shape != (len(table),):
            raise InputError(f"{p.size} probabilities for {len(table)} triplets")
        if not np.isfinite(p).all():
            raise InputError("probabilities must be finite")
        top = _top(p, cand, int(round(mix * n)), tie)
        rest = np.setdiff1d(cand, top, assume_unique=True)
        n_rand = min(int(round(explore * n)), n - top.size)
        rand = rng.permutation(rest)[:n_rand]
        rest = np.setdiff1d(rest, rand, assume_unique=True)
        picks = [(top, "top"), (rand, "random"), (_top(-np.abs(p - 0.5), rest, n - top.size - rand.size, tie),
                                                 "uncertain")]
    rows = np.concatenate([idx for idx, _ in picks]).astype(np.int64)
    reasons = np.concatenate([np.full(idx.size, why, dtype=object) for idx, why in picks])
    out = table.iloc[rows].copy()
    out["queue_reason"] = reasons
    out["queue_p"] = p[rows]
    return out


# ---------------------------------------------------------------------------------------------------- simulation


def _order_fixed(order: str, score: np.ndarray, pool: np.ndarray, seed: int) -> np.ndarray:
    if order == "random":
        return np.random.default_rng([seed, 2]).permutation(pool)
    tie = _tiebreak(score.size, seed)
    return pool[np.lexsort((tie[pool], -score[pool]))]


def _fit(table: pd.DataFrame, labels: np.ndarray, feats: pd.DataFrame, n_min: int, seed: int) -> FnModel | None:
    try:
        return train_fn_model(table, labels, n_min=n_min, seed=seed, features=feats)
    except NotEnoughVerdicts:
        return None


def simulate_queue(
    table: pd.DataFrame,
    labels: np.ndarray,
    order: str = "uncertainty",
    checkpoints: Sequence[int] = CHECKPOINTS,
    holdout: np.ndarray | None = None,
    batch_size: int = BATCH_SIZE,
    mix: float = MIX,
    cold_start: str = COLD_START,
    seed: int = 0,
    n_min: int = N_MIN,
    explore: float = EXPLORE,
) -> pd.DataFrame:
    """The learning curve of the review loop with a simulated annotator who answers from ``labels``.

    Args:
        table: triplet table, one row per item (unique (query_id, negative_id)); ``fn_score`` is computed when
            absent.
        labels: per row 1 (false negative), 0 (true negative) or NaN ("unsure": judged, no label).
        order: one of :data:`ORDERS`: ``random``, ``top`` (fn_score descending) or ``uncertainty``
            (:func:`next_items`, retraining after each batch of ``batch_size``; cold start until a model exists).
        checkpoints: numbers of verdicts at which to measure (batches are cut to land on them).
        holdout: boolean mask of rows never offered (the fixed held-out set); default none.
        n_min: verdicts of each class before the scorer is trained (:data:`~ecisem_core.curation.fn_model.N_MIN`).

    Returns:
        One row per checkpoint: ``n_verdicts``, ``n_fn``, ``n_tn`` (judged so far), ``cv_auc`` (the scorer's
        cross-validated AUC on the verdicts), ``auc_remaining`` (its AUC on the unjudged, non-held-out rows),
        ``auc_holdout`` (on the held-out rows), ``fn_score_auc_remaining`` / ``fn_score_auc_holdout`` (the hand-set
        score on the same rows). NaN where no model exists yet or a class is missing.
    """
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r}; use one of {list(ORDERS)}")
    y = np.asarray(labels, dtype=np.float64)
    if y.shape != (len(table),):
        raise InputError(f"{y.size} labels for {len(table)} triplets")
    keys = item_keys(table)
    if pd.Series(keys).duplicated().any():
        raise InputError("simulate_queue needs one row per item (unique query_id, negative_id)")
    table = table.reset_index(drop=True)
    if "fn_score" not in table.columns:
        table = table.assign(fn_score=flag_triplets(table)["fn_score"].to_numpy())
    score = table["fn_score"].to_numpy(dtype=np.float64)
    feats = model_features(table)
    held = np.zeros(len(table), dtype=bool) if holdout is None else np.asarray(holdout, dtype=bool)
    pool = np.flatnonzero(~held)
    fixed = None if order == "uncertainty" else _order_fixed(order, score, pool, seed)
    judged = np.zeros(len(table), dtype=bool)
    model: FnModel | None = None
    rows = []
    n_done = 0
    for target in sorted(set(int(c) for c in checkpoints)):
        target = min(target, pool.size)
        while n_done < target:
            take = min(batch_size, target - n_done)
            if fixed is not None:
                chosen = fixed[n_done:n_done + take]
            else:
                probs = predict(model, table, features=feats) if model is not None else None
                batch = next_items(table, probs, set(keys[judged | held].tolist()), k=take, mix=mix,
                                   seed=seed + n_done, cold_start=cold_start, explore=explore)
                chosen = batch.index.to_numpy()
            judged[chosen] = True
            n_done += chosen.size
            if fixed is None:
                model = _fit(table, np.where(judged, y, np.nan), feats, n_min, seed)
        if fixed is not None:
            model = _fit(table, np.where(judged, y, np.nan), feats, n_min, seed)
        rest = ~judged & ~held & np.isfinite(y)
        ho = held & np.isfinite(y)
        p = predict(model, table, features=feats) if model is not None else None
        yj = y[judged]
        rows.append({
            "n_verdicts": n_done,
            "n_fn": int(np.sum(yj == 1.0)),
            "n_tn": int(np.sum(yj == 0.0)),
            "cv_auc": model.cv_auc if model is not None else np.nan,
            "auc_remaining": roc_auc(y[rest], p[rest]) if p is not None else np.nan,
            "auc_holdout": roc_auc(y[ho], p[ho]) if p is not None and ho.any() else np.nan,
            "fn_score_auc_remaining": roc_auc(y[rest], score[rest]),
            "fn_score_auc_holdout": roc_auc(y[ho], score[ho]) if ho.any() else np.nan,
        })
        if n_done >= pool.size:
            break
    return pd.DataFrame(rows)
