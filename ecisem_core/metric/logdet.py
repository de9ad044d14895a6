"""The weighted Gram matrix of residual directions and the log-determinant ECI_sem is built from (docs/METRIC.md
§2.2): the one implementation that the score, the Shapley values, the bootstrap, rank stability and the per-triplet
explanation all call.

    M = (1/T) Σ_i w_i r̂_i r̂_iᵀ,   T = N unless given (a bootstrap draw counts repeated rows: T = Σ multiplicities)
    (1/κ) log det(I + κ M)        the coding rate of MCR² (Yu et al., arXiv 2006.08558, eq. 7) with κ = d/ε²

M is formed on the smaller side: d×d when N ≥ d, else the N×N matrix A Aᵀ with rows A_i = sqrt(w_i/T)·r̂_i, which
has the same non-zero spectrum, so log det(I_d + κAᵀA) = log det(I_N + κAAᵀ). The log-det is taken from a float64
Cholesky factor.
"""
from __future__ import annotations

import numpy as np


def scaled_rows(residuals: np.ndarray, w: np.ndarray, total: float | None = None) -> np.ndarray:
    """A with rows A_i = sqrt(w_i / T)·r̂_i (T = N unless ``total`` is given), in the residuals' float precision."""
    r = _float(residuals)
    scale = (np.asarray(w, dtype=np.float64) / (max(r.shape[0], 1) if total is None else total)).astype(r.dtype)
    return r * np.sqrt(scale)[:, None]


def weighted_grams(residuals: np.ndarray, ws: np.ndarray, total: float | None = None) -> np.ndarray:
    """K weighted Gram matrices at once, one per column of ``ws`` (N × K): shape (K, m, m) with m = min(N, d).

    For N ≥ d all K are one matrix product, rᵀ · [r·w_1/T, …, r·w_K/T]; for N < d each is A_k A_kᵀ. Computed in the
    residuals' precision (float64 for the score, float32 for the bootstrap and rank stability).
    """
    r = _float(residuals)
    n, d = r.shape
    ws = np.asarray(ws, dtype=np.float64)
    scale = (ws / (max(n, 1) if total is None else total)).astype(r.dtype)  # n × K
    k = scale.shape[1]
    if n >= d:
        grams = (r.T @ (r[:, None, :] * scale[:, :, None]).reshape(n, -1)).reshape(d, k, d)
        return grams.transpose(1, 0, 2)
    out = np.empty((k, n, n), dtype=r.dtype)
    for j in range(k):
        a = r * np.sqrt(scale[:, j])[:, None]
        out[j] = a @ a.T
    return out


def weighted_gram(residuals: np.ndarray, w: np.ndarray, total: float | None = None) -> np.ndarray:
    """M = (1/T) Σ_i w_i r̂_i r̂_iᵀ on the smaller side (see the module docstring)."""
    r = _float(residuals)
    n, d = r.shape
    scale = (np.asarray(w, dtype=np.float64) / (max(n, 1) if total is None else total)).astype(r.dtype)
    if n >= d:
        return r.T @ (r * scale[:, None])
    a = r * np.sqrt(scale)[:, None]
    return a @ a.T


def logdet_i_plus_gram(gram: np.ndarray, kappa: float) -> float:
    """log det(I + κ G) for a symmetric PSD Gram matrix G (float64 Cholesky)."""
    m = np.asarray(gram, dtype=np.float64) * kappa
    m[np.diag_indices_from(m)] += 1.0
    chol = np.linalg.cholesky(m)
    return float(2.0 * np.log(np.diag(chol)).sum())


def coding_rate(gram: np.ndarray, kappa: float) -> float:
    """(1/κ) log det(I + κ G): ECI_sem of a weighted Gram matrix."""
    return logdet_i_plus_gram(gram, kappa) / kappa


def logdet_i_plus(a: np.ndarray, kappa: float) -> float:
    """log det(I + κ AᵀA), via whichever Gram matrix is smaller (n×n or d×d), Cholesky in float64."""
    a = np.asarray(a, dtype=np.float64)
    n, d = a.shape
    gram = a @ a.T if n < d else a.T @ a
    return logdet_i_plus_gram(gram, kappa)


def _float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
