"""Uncertainty and stability of per-source ECI_sem (docs/METRIC.md §2.4).

- 95% interval: bootstrap over queries. One draw resamples the union of all sources' queries with replacement
  (paired across sources); each source keeps its sampled triplets of the drawn queries, with multiplicity.
  M_b = Σ m_i w_i r̂_i r̂_iᵀ / Σ m_i, ECI_sem_b = (1/κ) log det(I + κ M_b). Repeated triplets bias a log-det
  score down, so each source's draws are centred on its estimate (median shift) before the percentile interval
  and P(A > B) are taken.
- P(A > B) = share of draws with ECI_sem_b(A) > ECI_sem_b(B).
- Rank stability: share of jittered settings (τ, α, β, γ each times a factor drawn log-uniformly in
  [0.5, 1.5]; 0 stays 0) under which a source keeps its rank.

Bootstrap and stability Gram matrices are accumulated in float32 (the log-det stays float64): the resampling
noise they measure is orders of magnitude larger than float32 rounding (checked in tests/test_uncertainty.py).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ecisem_core.metric.logdet import coding_rate, weighted_gram
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


def _score_weighted(r32: np.ndarray, w: np.ndarray, mult: np.ndarray | None, kappa: float) -> float:
    """ECI_sem of rows r̂ with weights w, each row counted ``mult`` times: M = Σ m_i w_i r̂_i r̂_iᵀ / Σ m_i
    (float32 Gram matrix, float64 log-det)."""
    if mult is None:
        mult = np.ones_like(w)
    keep = mult > 0
    total = mult.sum()
    if total <= 0:
        return float("nan")
    return coding_rate(weighted_gram(r32[keep], mult[keep] * w[keep], total), kappa)


def bootstrap_scores(samples: list[SourceSample], w: list[np.ndarray], kappa: float, n_boot: int,
                     seed: int) -> np.ndarray:
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

    def one(j: int) -> np.ndarray:
        r32 = np.ascontiguousarray(samples[j].residuals, dtype=np.float32)
        mult = counts[:, local[j]]
        return np.array([_score_weighted(r32, w[j], mult[b].astype(np.float64), kappa) for b in range(n_boot)])

    for j, col in enumerate(map_sources(one, len(samples))):
        out[:, j] = col
    return out


def centre(boot: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Shift each column of draws so that its median is the point estimate.

    Resampling with replacement repeats triplets, and repeated residual directions lower a log-det (diversity)
    score: the raw draws sit below the estimate by a bias that is not sampling error. Centring keeps their
    spread (what the interval is for) and removes that shift.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return boot - np.nanmedian(boot, axis=0) + np.asarray(estimate, dtype=np.float64)


def intervals(boot: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column (of centred draws, see :func:`centre`)."""
    lo = (1 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN column (no draws) → NaN interval
        return np.nanpercentile(boot, lo, axis=0), np.nanpercentile(boot, 100 - lo, axis=0)


def pairwise_prob(boot: np.ndarray, names: list[str]) -> pd.DataFrame:
    """P(row source > column source) over bootstrap draws (NaN draws ignored); diagonal NaN."""
    s = boot.shape[1]
    p = np.full((s, s), np.nan)
    for i in range(s):
        for j in range(s):
            if i != j:
                ok = ~np.isnan(boot[:, i]) & ~np.isnan(boot[:, j])
                p[i, j] = float((boot[ok, i] > boot[ok, j]).mean()) if ok.any() else np.nan
    return pd.DataFrame(p, index=names, columns=names)


def ranks_desc(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score (ties by order; NaN last)."""
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
    r = np.empty(len(scores), dtype=np.int64)
    r[order] = np.arange(1, len(scores) + 1)
    return r


def rank_stability(samples: list[SourceSample], tau: float, alpha: float, beta: float, gamma: float,
                   kappa: float, base_scores: np.ndarray, trials: int, seed: int) -> np.ndarray:
    """Share of jittered settings under which each source keeps its rank."""
    if trials == 0 or not samples:
        return np.full(len(samples), np.nan)
    rng = np.random.default_rng(seed + 1)
    factors = np.exp(rng.uniform(np.log(JITTER_LOW), np.log(JITTER_HIGH), size=(trials, 4)))
    settings = factors * np.array([tau, alpha, beta, gamma])

    def one(j: int) -> np.ndarray:
        s = samples[j]
        r32 = np.ascontiguousarray(s.residuals, dtype=np.float32)
        return np.array([
            _score_weighted(r32, _discounted(weights(target_consistency(s.delta, t), semantic_locality(s.delta, t),
                                                     s.rho, a, b, g), s.discount), None, kappa)
            for t, a, b, g in settings
        ])

    scores = np.stack(map_sources(one, len(samples)), axis=1)  # trials × S
    base = ranks_desc(base_scores)
    kept = np.array([ranks_desc(row) == base for row in scores])
    return kept.mean(axis=0)


def _discounted(w: np.ndarray, discount: np.ndarray | None) -> np.ndarray:
    return w if discount is None else w * discount


def map_sources(fn: Callable[[int], np.ndarray], n: int) -> list[np.ndarray]:
    """[fn(0), …, fn(n−1)] on up to ``os.cpu_count()`` threads, each with single-threaded BLAS.

    Many small matrix products are faster as one product per core than as threaded BLAS inside each product,
    and threaded BLAS collapses when the cores are busy (measured 10–20× slower on a loaded 2-core machine).
    """
    workers = max(1, min(n, os.cpu_count() or 1))
    with threadpool_limits(limits=1, user_api="blas"):
        if workers == 1:
            return [fn(j) for j in range(n)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, range(n)))
