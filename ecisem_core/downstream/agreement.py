"""Agreement between a downstream ranking of sources and a score: Kendall τ-b and Spearman ρ (scipy), with
percentile-bootstrap CIs over sources; row-vectorised versions for a grid of settings. The one place rank
statistics are computed.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, rankdata, spearmanr

BOOTSTRAP: int = 1000
"""Bootstrap resamples over sources for the agreement CIs."""
CI_LEVEL: float = 0.95
SCORE_NAMES: tuple[str, ...] = ("eci_sem", "eci_v1", "c", "h", "rho", "w")
"""Scores compared with the downstream ranking: ECI_sem, classic ECI and per-source means of each term."""


def rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Kendall τ-b, Spearman ρ) of two equal-length vectors; NaN when either is constant or n < 2."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def agreement_table(downstream: pd.Series, scores: Mapping[str, pd.Series], n_boot: int = BOOTSTRAP,
                    seed: int = 0, level: float = CI_LEVEL) -> pd.DataFrame:
    """Kendall τ and Spearman ρ between the downstream values and each score over the sources both cover.

    Higher score should mean better downstream, so +1 is perfect agreement. The CI is a percentile bootstrap over
    sources: resample the n sources with replacement ``n_boot`` times, recompute both coefficients (τ-b handles the
    ties that repeats create), and take the (1 ± level)/2 quantiles of the finite values. With few sources the
    interval is wide, which is the honest answer. Also reports the two-sided p-values of scipy's tests.
    """
    rows = []
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    for name, series in scores.items():
        common = [s for s in downstream.index if s in series.index and np.isfinite(series.get(s, np.nan))]
        x = downstream.loc[common].to_numpy(float)
        y = series.loc[common].to_numpy(float)
        tau, rho = rank_correlations(x, y)
        ok = not math.isnan(tau)
        row = {"score": name, "n_sources": len(common), "kendall_tau": tau,
               "kendall_p": float(kendalltau(x, y).pvalue) if ok else float("nan"),
               "spearman": rho, "spearman_p": float(spearmanr(x, y).pvalue) if ok else float("nan")}
        boots = np.full((n_boot, 2), np.nan)
        if len(common) >= 2 and n_boot > 0:
            idx = rng.integers(0, len(common), size=(n_boot, len(common)))
            for b in range(n_boot):
                boots[b] = rank_correlations(x[idx[b]], y[idx[b]])
        for j, col in enumerate(("kendall", "spearman")):
            finite = boots[:, j][np.isfinite(boots[:, j])]
            row[f"{col}_ci_low"] = float(np.percentile(finite, lo_q)) if finite.size else float("nan")
            row[f"{col}_ci_high"] = float(np.percentile(finite, hi_q)) if finite.size else float("nan")
        rows.append(row)
    cols = ["score", "n_sources", "kendall_tau", "kendall_ci_low", "kendall_ci_high", "kendall_p",
            "spearman", "spearman_ci_low", "spearman_ci_high", "spearman_p"]
    return pd.DataFrame(rows, columns=cols)


def scores_from_result(sources: pd.DataFrame, triplets: pd.DataFrame) -> dict[str, pd.Series]:
    """Per-source score Series from a :class:`~ecisem_core.score.ScoreResult`'s tables: ``eci_sem`` and
    ``eci_v1`` from ``sources``; c, h, ρ, w as per-source means over ``triplets``."""
    src = sources.set_index(sources["source"].astype(str))
    out = {name: src[name].astype(float) for name in ("eci_sem", "eci_v1") if name in src.columns}
    means = triplets.groupby(triplets["source"].astype(str))[[c for c in ("c", "h", "rho", "w")
                                                                if c in triplets.columns]].mean()
    out.update({c: means[c].astype(float) for c in means.columns})
    return {k: out[k].rename(k) for k in SCORE_NAMES if k in out}


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row of ``x`` (m, n) with ``y`` (n), vectorised over rows.

    τ_b = Σ_{i<j} sgn(x_i − x_j)·sgn(y_i − y_j) / sqrt(n_x · n_y), n_x / n_y = pairs not tied in x / y
    (equals ``scipy.stats.kendalltau``); NaN when either side is constant.
    """
    x, y = np.atleast_2d(np.asarray(x, float)), np.asarray(y, float)
    i, j = np.triu_indices(len(y), 1)
    dx, dy = np.sign(x[:, i] - x[:, j]), np.sign(y[i] - y[j])
    denom = np.sqrt((dx != 0).sum(axis=1) * float((dy != 0).sum()))
    return np.divide(dx @ dy, denom, out=np.full(len(x), np.nan), where=denom > 0)


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row of ``x`` with ``y``: Pearson correlation of average ranks; NaN when constant."""
    rx = rankdata(np.atleast_2d(np.asarray(x, float)), axis=1)
    ry = rankdata(np.asarray(y, float))
    rx = rx - rx.mean(axis=1, keepdims=True)
    ry = ry - ry.mean()
    denom = np.sqrt((rx ** 2).sum(axis=1) * (ry ** 2).sum())
    return np.divide(rx @ ry, denom, out=np.full(len(rx), np.nan), where=denom > 1e-12)
