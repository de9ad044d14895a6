"""Uncertainty and stability of per-source ECI_sem (docs/METRIC.md §2.4).

- 95% interval: bootstrap over queries. One draw resamples the union of all sources' queries with replacement
  (paired across sources); each source keeps its sampled triplets of the drawn queries, with multiplicity.
  M_b = Σ m_i w_i r̂_i r̂_iᵀ / Σ m_i, ECI_sem_b = (1/κ) log det(I + κ M_b). Repeated triplets bias a log-det
  score down, so each source's draws are centred on its estimate (median shift) before the percentile interval
  and P(A > B) are taken.
- P(A > B) = share of draws with ECI_sem_b(A) > ECI_sem_b(B).
- Rank stability: share of jittered settings (τ, α, β, γ each times a factor drawn log-uniformly in
  [0.5, 1.5]; 0 stays 0) under which a source keeps its rank.

Sources whose sample has fewer rows than dimensions (N < d) are done together, grouped by N: their row Gram
matrices R Rᵀ are formed once and every draw or jittered setting only re-scales them
(:func:`ecisem_core.metric.logdet.coding_rates_rowside`), so many small sources cost one batched Cholesky.
Bootstrap and stability Gram matrices are accumulated in float32 (the log-det stays float64): the resampling
noise they measure is orders of magnitude larger than float32 rounding (checked in tests/test_uncertainty.py).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.metric.logdet import (
    coding_rate, coding_rate_qr, coding_rates_rowside, flush_tiny, row_floors, row_grams, scaled_rows,
    weighted_gram,
)
from ecisem_core.metric.parallel import Ticker, _ticked, map_sources, split_draws
from ecisem_core.metric.terms import semantic_locality, target_consistency, weights

JITTER_LOW, JITTER_HIGH = 0.5, 1.5
"""Range of the multiplicative jitter of τ and the exponents for rank stability."""


@dataclass
class SourceSample:
    """What the uncertainty estimates need of one source's sample."""

    name: str
    residuals: np.ndarray  # n × d, float32 is enough here
    delta: np.ndarray
    rho: np.ndarray
    query_codes: np.ndarray  # global query codes (same coding for every source)
    discount: np.ndarray | None = None  # fixed factor of each weight (the false-negative discount), None = 1


FLOAT32_MAX_WEIGHT = 1.0
"""Largest triplet weight for which the bootstrap and rank stability form M in float32. Every setting without a
negative exponent has weights in (0, 1] (c, h, ρ and the FN discount are), and there float32 rounding is far below
the resampling spread (tests/test_uncertainty.py). A negative exponent makes weights of up to 10¹² and more (the
floored term to that power), where float32 rounding of κM exceeds the identity and I + κM stops being positive
definite: those log-dets are taken from a QR factor in float64 instead (:func:`logdet.coding_rate_qr`)."""


@dataclass(frozen=True)
class Rows:
    """A large source's sampled residual rows in float32, as the bootstrap and rank stability read them: ``raw``
    (for the float64 QR path), ``flushed`` (entries below the flush bound zeroed once: a scale of at most 1 keeps
    them below it, so every draw would zero them again) and ``floor``, each flushed row's smallest non-zero
    |entry| (:func:`~ecisem_core.metric.logdet.row_floors`). Real embeddings have such entries in every row
    (all-MiniLM-L6-v2: down to 1e-37), so without this each draw paid a full flush pass; now it pays one only
    when a scale could take a kept entry below the bound. The values are the same."""

    raw: np.ndarray
    flushed: np.ndarray
    floor: np.ndarray


def large_rows(residuals: np.ndarray) -> Rows:
    """:class:`Rows` of one source's residuals."""
    raw = np.ascontiguousarray(residuals, dtype=np.float32)
    flushed = flush_tiny(raw.copy())
    return Rows(raw, flushed, row_floors(flushed))


def _score_weighted(rows: Rows, w: np.ndarray, mult: np.ndarray | None, kappa: float) -> float:
    """ECI_sem of rows r̂ with weights w, each row counted ``mult`` times: M = Σ m_i w_i r̂_i r̂_iᵀ / Σ m_i
    (float32 Gram matrix, float64 log-det; float64 QR when a weight exceeds :data:`FLOAT32_MAX_WEIGHT`)."""
    if mult is None:
        mult = np.ones_like(w)
    keep = mult > 0
    total = mult.sum()
    if total <= 0:
        return float("nan")
    everyone = bool(keep.all())
    wk = w if everyone else w[keep]
    top = np.max(wk)
    if top > FLOAT32_MAX_WEIGHT:
        return _rate_qr(rows.raw[keep], mult[keep] * wk, total, kappa)
    if top * np.max(mult) > total:  # a scale above 1 (never with counts and weights ≤ 1) could lift an
        # entry zeroed in rows.flushed back over the flush bound: the plain path then
        return coding_rate(weighted_gram(rows.raw[keep], mult[keep] * wk, total), kappa)
    if everyone:
        return coding_rate(weighted_gram(rows.flushed, mult * wk, total, floor=rows.floor), kappa)
    # rows[keep] is a fresh copy: scaled in place
    return coding_rate(weighted_gram(rows.flushed[keep], mult[keep] * wk, total, floor=rows.floor[keep],
                                     overwrite=True), kappa)


def _rate_qr(rows: np.ndarray, w: np.ndarray, total: float, kappa: float) -> float:
    """ECI_sem of ``rows`` with weights w (M = Σ w_i r̂_i r̂_iᵀ / total) by a float64 QR (:func:`coding_rate_qr`)."""
    return coding_rate_qr(scaled_rows(np.asarray(rows, dtype=np.float64), w, total), kappa)


def _rowside_qr(samples: list[SourceSample], js: list[int], scale: np.ndarray, kappa: float) -> np.ndarray:
    """:func:`coding_rates_rowside` for weights above :data:`FLOAT32_MAX_WEIGHT`: one float64 QR log-det per
    (weighting, source), rows with scale 0 left out (they add nothing to M). ``scale``: (K, g, N) → (K, g)."""
    out = np.empty(scale.shape[:2])
    for k in range(scale.shape[0]):
        for i, j in enumerate(js):
            keep = scale[k, i] > 0
            out[k, i] = _rate_qr(np.asarray(samples[j].residuals)[keep], scale[k, i, keep], 1.0, kappa)
    return out


def bootstrap_scores(samples: list[SourceSample], w: list[np.ndarray], kappa: float, n_boot: int,
                     seed: int, ticker: Ticker | None = None) -> np.ndarray:
    """B × S matrix of bootstrap ECI_sem values (NaN where a draw holds none of a source's queries).

    The draws are made first (one seeded generator, so the result does not depend on threading); the
    per-source log-dets then run on worker threads (see :func:`map_sources`).
    """
    out = np.full((n_boot, len(samples)), np.nan)
    if n_boot == 0 or not samples:
        return out
    present = np.unique(np.concatenate([s.query_codes for s in samples]))
    local = [np.searchsorted(present, s.query_codes) for s in samples]
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, present.size, present.size), minlength=present.size)
                       for _ in range(n_boot)]).astype(np.float32)  # B × |queries|

    groups, large = row_side_groups(samples)

    def rows(js: list[int], grams: np.ndarray, draws: range) -> np.ndarray:  # draws × g: row-side group, batched
        mult = counts[draws.start:draws.stop, np.stack([local[j] for j in js])].astype(np.float64)  # b × g × N
        total = mult.sum(axis=-1)  # B × g
        scale = mult * np.stack([w[j] for j in js]).astype(np.float64)[None] / np.maximum(total, 1.0)[..., None]
        if max(np.max(w[j]) for j in js) > FLOAT32_MAX_WEIGHT:
            rates = _rowside_qr(samples, js, scale, kappa)
        else:
            rates = coding_rates_rowside(grams, scale, kappa)
        rates[total <= 0] = np.nan
        if ticker is not None:
            ticker.tick(len(draws) * len(js))
        return rates

    big = {j: large_rows(samples[j].residuals) for j in large}

    def one(j: int, draws: range) -> np.ndarray:
        mult = counts[draws.start:draws.stop, local[j]].astype(np.float64)  # this part's draws only
        return np.array([_ticked(ticker, _score_weighted(big[j], w[j], m, kappa)) for m in mult])

    for (js, draws), values in run_tasks(samples, groups, large, n_boot, rows, one):
        out[draws.start:draws.stop, js] = values
    return out


def run_tasks(samples: list[SourceSample], groups: list[list[int]], large: list[int], n: int,
              rows: Callable[[list[int], np.ndarray, range], np.ndarray],
              one: Callable[[int, range], np.ndarray]) -> list[tuple[tuple[list[int] | int, range], np.ndarray]]:
    """The work of :func:`bootstrap_scores` or :func:`rank_stability` on the worker threads (:func:`map_sources`),
    all of it in one pool: ``rows(js, grams, part)`` for each part of the n draws of each group ``js`` of row-side
    sources (part × g values, one batched Cholesky of their row Gram matrices ``grams``) and ``one(j, part)`` for
    each part of a large source's draws — each split in :data:`PARTS_PER_CORE` parts per core
    (:func:`split_draws`) so that every kind of work shares the cores evenly. A group's Gram matrices are formed
    by the first of its tasks and dropped after the last (:class:`GroupGrams`). Returns ((sources, draws), values)
    for each task, in order; every value is computed on its own, so neither the threads nor the split change it.
    """
    parts = PARTS_PER_CORE * (os.cpu_count() or 1)
    tasks: list[tuple[Any, range]] = split_draws(list(range(len(groups))), n, parts=parts)
    n_rows = len(tasks)
    tasks += split_draws(large, n, parts=parts)
    grams = GroupGrams(samples, groups, [what for what, _ in tasks[:n_rows]])

    def run(i: int) -> np.ndarray:
        what, draws = tasks[i]
        if i >= n_rows:
            return one(what, draws)
        try:
            return rows(groups[what], grams.take(what), draws)
        finally:
            grams.release(what)

    keys = [(groups[i], draws) for i, draws in tasks[:n_rows]] + tasks[n_rows:]
    return list(zip(keys, map_sources(run, len(tasks))))


PARTS_PER_CORE = 4
"""Parts the draws (or jittered settings) of each row-side group and each large source are split into, per core
(:func:`run_tasks`)."""


class GroupGrams:
    """The row Gram matrices of each group of row-side sources (:func:`group_grams`), formed once by the first task
    that needs them and dropped when the group's last task is done: the tasks run group after group, so only a
    few groups' matrices are held at a time (10,000 sources of N = 300 would need 3.6 GB at once)."""

    def __init__(self, samples: list[SourceSample], groups: list[list[int]], task_groups: list[int]) -> None:
        self._samples, self._groups = samples, groups
        self._left = np.bincount(np.asarray(task_groups, dtype=np.int64), minlength=len(groups)).tolist()
        self._grams: dict[int, np.ndarray] = {}
        self._locks = [threading.Lock() for _ in groups]

    def take(self, i: int) -> np.ndarray:
        with self._locks[i]:
            if i not in self._grams:
                self._grams[i] = group_grams(self._samples, self._groups[i])
            return self._grams[i]

    def release(self, i: int) -> None:
        with self._locks[i]:
            self._left[i] -= 1
            if self._left[i] == 0:
                self._grams.pop(i, None)


def group_grams(samples: list[SourceSample], js: list[int]) -> np.ndarray:
    """The float32 row Gram matrices R Rᵀ of one group of :func:`row_side_groups` (sources of equal N), stacked."""
    return row_grams(np.stack([np.asarray(samples[j].residuals, dtype=np.float32) for j in js]))


def row_side_groups(samples: list[SourceSample]) -> tuple[list[list[int]], list[int]]:
    """Indices of the sources with 0 < N < d sampled rows, grouped by N (done batched on the row side), and of
    the rest (N ≥ d, or empty: one at a time)."""
    by_n: dict[int, list[int]] = {}
    large = []
    for j, s in enumerate(samples):
        n, d = np.shape(s.residuals)
        if 0 < n < d:
            by_n.setdefault(n, []).append(j)
        else:
            large.append(j)
    return list(by_n.values()), large


def centre(boot: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Shift each column of draws so that its median is the point estimate.

    Resampling with replacement repeats triplets, and repeated residual directions lower a log-det (diversity)
    score: the raw draws sit below the estimate by a bias that is not sampling error. Centring keeps their
    spread (what the interval is for) and removes that shift.
    """
    return boot - nan_percentile(boot, 50.0) + np.asarray(estimate, dtype=np.float64)


def nan_percentile(x: np.ndarray, q: float) -> np.ndarray:
    """``np.nanpercentile(x, q, axis=0)`` (linear interpolation between order statistics; NaN for a column with
    no number), vectorised over the columns: numpy's own loops over columns one at a time when NaNs are present,
    which costs seconds with thousands of sources."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:  # no draws (B = 0) or no sources
        return np.full(x.shape[1:] if x.ndim == 2 else (), np.nan)
    ordered = np.sort(x, axis=0)  # NaNs last
    count = (~np.isnan(x)).sum(axis=0)
    pos = np.maximum(count - 1, 0) * (q / 100.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
    cols = np.arange(x.shape[1])
    low, high = ordered[lo, cols], ordered[hi, cols]
    out = low + (high - low) * (pos - lo)
    return np.where(count > 0, out, np.nan)


def intervals(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column (of centred draws, see :func:`centre`)."""
    lo = (1 - level) / 2 * 100
    return nan_percentile(boot, lo), nan_percentile(boot, 100 - lo)  # an all-NaN column (no draws): NaN


PAIRWISE_MAX_SOURCES = 300
"""P(A > B) is a matrix over pairs: with more sources than this it is kept for the this many best-ranked ones
(by the point estimate), which holds every adjacent pair a reader compares near the top."""


def top_sources(estimate: np.ndarray | None, n: int, limit: int = PAIRWISE_MAX_SOURCES) -> np.ndarray:
    """Indices (in their original order) of the ``limit`` sources with the highest ``estimate`` (NaN last); all
    ``n`` when there are no more than ``limit`` or no estimate."""
    if estimate is None or n <= limit:
        return np.arange(n)
    order = np.argsort(-np.nan_to_num(np.asarray(estimate, dtype=np.float64), nan=-np.inf), kind="stable")
    return np.sort(order[:limit])


def pairwise_prob(boot: np.ndarray, names: list[str], estimate: np.ndarray | None = None,
                  limit: int = PAIRWISE_MAX_SOURCES) -> pd.DataFrame:
    """P(row source > column source) over bootstrap draws (draws where either is NaN ignored); diagonal NaN.

    With more than ``limit`` sources, only the ``limit`` highest by ``estimate`` (all when it is None) are rows and
    columns. One pass per draw over the S × S comparisons (vectorised), so the cost is B·S² comparisons.
    """
    keep = top_sources(estimate, len(names), limit)
    boot, names = boot[:, keep], [names[i] for i in keep]
    s = boot.shape[1]
    wins = np.zeros((s, s))
    both = np.zeros((s, s))
    for row in boot:
        ok = ~np.isnan(row)
        pair = ok[:, None] & ok[None, :]
        both += pair
        wins += pair & (row[:, None] > row[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(both > 0, wins / np.maximum(both, 1), np.nan)
    np.fill_diagonal(p, np.nan)
    return pd.DataFrame(p, index=names, columns=names)


def ranks_desc(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score (ties by order; NaN last)."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    r = np.empty(len(scores), dtype=np.int64)
    r[order] = np.arange(1, len(scores) + 1)
    return r


def rank_stability(samples: list[SourceSample], tau: float, alpha: float, beta: float, gamma: float,
                   kappa: float, base_scores: np.ndarray, trials: int, seed: int,
                   ticker: Ticker | None = None) -> np.ndarray:
    """Share of jittered settings under which each source keeps its rank."""
    if trials == 0 or not samples:
        return np.full(len(samples), np.nan)
    rng = np.random.default_rng(seed + 1)
    factors = np.exp(rng.uniform(np.log(JITTER_LOW), np.log(JITTER_HIGH), size=(trials, 4)))
    settings = factors * np.array([tau, alpha, beta, gamma])

    scores = np.full((trials, len(samples)), np.nan)  # trials × S
    groups, large = row_side_groups(samples)

    def rows(js: list[int], grams: np.ndarray, trial: range) -> np.ndarray:  # trials × g: row-side group, batched
        delta = np.stack([samples[j].delta for j in js])
        rho = np.stack([samples[j].rho for j in js])
        disc = np.stack([np.ones(delta.shape[1]) if samples[j].discount is None else samples[j].discount
                         for j in js])
        scale = np.stack([weights(target_consistency(delta, t), semantic_locality(delta, t), rho, a, b, g) * disc
                          for t, a, b, g in settings[trial.start:trial.stop]]) / delta.shape[1]
        if np.max(scale) * delta.shape[1] > FLOAT32_MAX_WEIGHT:
            rates = _rowside_qr(samples, js, scale, kappa)
        else:
            rates = coding_rates_rowside(grams, scale, kappa)
        if ticker is not None:
            ticker.tick(len(trial) * len(js))
        return rates

    big = {j: large_rows(samples[j].residuals) for j in large}

    def one(j: int, trial: range) -> np.ndarray:
        s = samples[j]
        return np.array([
            _ticked(ticker, _score_weighted(big[j], _discounted(weights(
                target_consistency(s.delta, t), semantic_locality(s.delta, t), s.rho, a, b, g), s.discount),
                None, kappa))
            for t, a, b, g in settings[trial.start:trial.stop]
        ])

    for (js, trial), values in run_tasks(samples, groups, large, trials, rows, one):
        scores[trial.start:trial.stop, js] = values
    base = ranks_desc(base_scores)
    kept = np.array([ranks_desc(row) == base for row in scores])
    return kept.mean(axis=0)


def _discounted(w: np.ndarray, discount: np.ndarray | None) -> np.ndarray:
    return w if discount is None else w * discount
