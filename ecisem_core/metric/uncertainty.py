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

import functools
import os
import threading
from collections.abc import Callable
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import OpenBLASController, ThreadpoolController

from ecisem_core.metric.logdet import coding_rate, coding_rates_rowside, row_grams, weighted_gram
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


class Ticker:
    """Counts finished units of work (one log-det each) from any thread and reports ``(done, total)`` to a
    callback: the dashboard's progress bar and its estimate of the time left. ``None`` as the callback: no cost."""

    def __init__(self, total: int, report: Callable[[int, int], None] | None = None) -> None:
        self.total, self.done, self._report, self._lock = int(total), 0, report, threading.Lock()

    def tick(self, n: int = 1) -> None:
        if self._report is None:
            return
        with self._lock:  # reported under the lock, so a reader never sees the count go back
            self.done += int(n)
            self._report(self.done, self.total)


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

    grams = map_sources(lambda i: group_grams(samples, groups[i]), len(groups))

    def rows(i: int, draws: range) -> np.ndarray:  # draws × g: group i of the row-side sources, batched
        js = groups[i]
        mult = counts[draws.start:draws.stop, np.stack([local[j] for j in js])].astype(np.float64)  # b × g × N
        total = mult.sum(axis=-1)  # B × g
        scale = mult * np.stack([w[j] for j in js]).astype(np.float64)[None] / np.maximum(total, 1.0)[..., None]
        rates = coding_rates_rowside(grams[i], scale, kappa)
        rates[total <= 0] = np.nan
        if ticker is not None:
            ticker.tick(len(draws) * len(js))
        return rates

    r32 = {j: np.ascontiguousarray(samples[j].residuals, dtype=np.float32) for j in large}

    def one(j: int, draws: range) -> np.ndarray:
        mult = counts[draws.start:draws.stop, local[j]].astype(np.float64)  # this part's draws only
        return np.array([_ticked(ticker, _score_weighted(r32[j], w[j], m, kappa)) for m in mult])

    for (js, draws), values in run_tasks(groups, large, n_boot, rows, one):
        out[draws.start:draws.stop, js] = values
    return out


def run_tasks(groups: list[list[int]], large: list[int], n: int,
              rows: Callable[[int, range], np.ndarray],
              one: Callable[[int, range], np.ndarray]) -> list[tuple[tuple[list[int] | int, range], np.ndarray]]:
    """The work of :func:`bootstrap_scores` or :func:`rank_stability` on the worker threads (:func:`map_sources`),
    all of it in one pool: ``rows(i, part)`` for each part of the n draws of group i of the row-side sources
    (part × g values, one batched Cholesky) and ``one(j, part)`` for each part of a large source's draws — each
    split in :data:`PARTS_PER_CORE` parts per core (:func:`split_draws`) so that every kind of work shares the
    cores evenly. Returns ((sources, draws), values) for each task, in order; every value is computed on its own,
    so neither the threads nor the split change it.
    """
    parts = PARTS_PER_CORE * (os.cpu_count() or 1)
    tasks: list[tuple[Any, range]] = split_draws(list(range(len(groups))), n, parts=parts)
    n_rows = len(tasks)
    tasks += split_draws(large, n, parts=parts)

    def run(i: int) -> np.ndarray:
        what, draws = tasks[i]
        return rows(what, draws) if i < n_rows else one(what, draws)

    keys = [(groups[i], draws) for i, draws in tasks[:n_rows]] + tasks[n_rows:]
    return list(zip(keys, map_sources(run, len(tasks))))


PARTS_PER_CORE = 4
"""Parts the draws (or jittered settings) of each row-side group and each large source are split into, per core
(:func:`run_tasks`)."""


def split_draws(large: list[int], n: int, parts: int | None = None) -> list[tuple[int, range]]:
    """(source, draws) tasks for the worker threads: each source's ``n`` draws in ``parts`` contiguous blocks (one
    per core by default), so that a single large source still uses every core. Every draw is computed on its own,
    so the values do not depend on the split.

    >>> split_draws([3, 5], 5, parts=2)
    [(3, range(0, 3)), (3, range(3, 5)), (5, range(0, 3)), (5, range(3, 5))]
    """
    parts = parts or os.cpu_count() or 1
    step = -(-n // max(1, min(n, parts))) if n else 1
    return [(j, range(a, min(a + step, n))) for j in large for a in range(0, n, step)]


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

    grams = map_sources(lambda i: group_grams(samples, groups[i]), len(groups))

    def rows(i: int, trial: range) -> np.ndarray:  # trials × g: group i of the row-side sources, batched
        js = groups[i]
        delta = np.stack([samples[j].delta for j in js])
        rho = np.stack([samples[j].rho for j in js])
        disc = np.stack([np.ones(delta.shape[1]) if samples[j].discount is None else samples[j].discount
                         for j in js])
        scale = np.stack([weights(target_consistency(delta, t), semantic_locality(delta, t), rho, a, b, g) * disc
                          for t, a, b, g in settings[trial.start:trial.stop]]) / delta.shape[1]
        rates = coding_rates_rowside(grams[i], scale, kappa)
        if ticker is not None:
            ticker.tick(len(trial) * len(js))
        return rates

    r32 = {j: np.ascontiguousarray(samples[j].residuals, dtype=np.float32) for j in large}

    def one(j: int, trial: range) -> np.ndarray:
        s = samples[j]
        return np.array([
            _ticked(ticker, _score_weighted(r32[j], _discounted(weights(
                target_consistency(s.delta, t), semantic_locality(s.delta, t), s.rho, a, b, g), s.discount),
                None, kappa))
            for t, a, b, g in settings[trial.start:trial.stop]
        ])

    for (js, trial), values in run_tasks(groups, large, trials, rows, one):
        scores[trial.start:trial.stop, js] = values
    base = ranks_desc(base_scores)
    kept = np.array([ranks_desc(row) == base for row in scores])
    return kept.mean(axis=0)


def _ticked(ticker: Ticker | None, value: float) -> float:
    """``value``, after one tick of ``ticker`` (a log-det finished)."""
    if ticker is not None:
        ticker.tick()
    return value


def _discounted(w: np.ndarray, discount: np.ndarray | None) -> np.ndarray:
    return w if discount is None else w * discount


@functools.cache
def _blas() -> ThreadpoolController:
    """One scan of the loaded BLAS libraries per process (a scan costs about 1 ms, once per call before)."""
    return ThreadpoolController()


class SharedBlasLimit:
    """Single-threaded BLAS while any caller is inside, the previous limits back when the last one leaves.

    BLAS thread limits are process-wide, and threadpoolctl (≥ 3.7) lets only one "controlling" thread change an
    OpenBLAS limit, silently ignoring the others until that thread leaves a ``with`` block. In the dashboard the
    slider path and two background jobs each entered their own ``limit()`` block: one job's limit was ignored or
    lifted by another thread leaving, its worker threads ran threaded BLAS from two threads at once on two cores,
    and the bootstrap of the 100k benchmark set took 6.6–12.9 s in the server against 3.7 s in a script. Here
    the callers are counted under one lock; the first to enter sets the limit and the last to leave restores
    it, each taking control of OpenBLAS first (``clear_controlling_thread(force=True)``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    def __enter__(self) -> SharedBlasLimit:
        with self._lock:
            if self._users == 0:
                _take_control()
                self._limiter = _blas().limit(limits=1, user_api="blas")
            self._users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                _take_control()
                self._limiter.restore_original_limits()
                self._limiter = None
                _take_control()  # leave no thread in control, as a ``with threadpool_limits`` block would


def _take_control() -> None:
    """Let the calling thread change OpenBLAS's limits (see :class:`SharedBlasLimit`)."""
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)  # threadpoolctl ≥ 3.7
    if clear is not None:
        clear(force=True)


single_threaded_blas = SharedBlasLimit()
"""The process's one :class:`SharedBlasLimit` (``with single_threaded_blas: …``)."""


def map_sources(fn: Callable[[int], np.ndarray], n: int) -> list[np.ndarray]:
    """[fn(0), …, fn(n−1)] on up to ``os.cpu_count()`` threads, each with single-threaded BLAS.

    Many small matrix products are faster as one product per core than as threaded BLAS inside each product,
    and threaded BLAS collapses when the cores are busy (measured 10–20× slower on a loaded 2-core machine).
    """
    workers = max(1, min(n, os.cpu_count() or 1))
    with single_threaded_blas:
        if workers == 1:
            return [fn(j) for j in range(n)]
        # a few contiguous blocks per worker, not one task per source: 10,000 tiny sources as 10,000 tasks spent
        # most of their time in the pool's locks
        blocks = [range(a, min(a + -(-n // (4 * workers)), n)) for a in range(0, n, -(-n // (4 * workers)))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [x for part in pool.map(lambda r: [fn(j) for j in r], blocks) for x in part]
