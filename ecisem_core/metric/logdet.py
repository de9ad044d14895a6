"""The weighted Gram matrix of residual directions and the log-determinant ECI_sem is built from (docs/METRIC.md
§2.2): the one implementation that the score, the Shapley values, the bootstrap, rank stability and the per-triplet
explanation all call.

    M = (1/T) Σ_i w_i r̂_i r̂_iᵀ,   T = N unless given (a bootstrap draw counts repeated rows: T = Σ multiplicities)
    (1/κ) log det(I + κ M)        the coding rate of MCR² (Yu et al., arXiv 2006.08558, eq. 7) with κ = d/ε²

M is formed on the smaller side: d×d when N ≥ d, else the N×N matrix A Aᵀ with rows A_i = sqrt(w_i/T)·r̂_i, which
has the same non-zero spectrum, so log det(I_d + κAᵀA) = log det(I_N + κAAᵀ). The log-det is taken from a float64
Cholesky factor.

Many sources at once (:func:`coding_rates_rowside`): for N < d the N×N *row* Gram matrix G = R Rᵀ does not depend
on the weights, so every re-weighting of the same rows — a bootstrap draw (multiplicities), a jittered setting,
a Shapley coalition — is M = D G D with D = diag(sqrt(w_i/T)), and the log-dets of all of them (and of all sources
of the same N) are one batched Cholesky.
"""
from __future__ import annotations

import numpy as np

from ecisem_core.metric.cholesky import cholesky_diagonal


def flush_tiny(a: np.ndarray) -> np.ndarray:
    """``a`` (changed in place) with every entry smaller in size than √(smallest normal number) of its dtype set
    to 0, so that no product of two entries is subnormal.

    A subnormal operand or product sends BLAS to the processor's slow path: on real data (weights down to 1e-9,
    residual components down to 1e-37) a float32 2,000 × 384 Gram matrix took 23.5 ms instead of 2.8 ms. What is
    dropped adds less than the smallest normal number (1.2e-38 in float32) to an entry of M, below the rounding of
    any entry it could change.
    """
    bound = _flush_bound(a.dtype)
    a[(a > -bound) & (a < bound)] = 0
    return a


def _flush_bound(dtype: np.dtype) -> np.floating:
    """√(smallest normal number) of ``dtype``, the bound of :func:`flush_tiny`."""
    return np.sqrt(np.finfo(dtype).tiny)


def scaled_rows(residuals: np.ndarray, w: np.ndarray, total: float | None = None, *,
                floor: np.ndarray | None = None, overwrite: bool = False) -> np.ndarray:
    """A with rows A_i = sqrt(w_i / T)·r̂_i (T = N unless ``total`` is given), in the residuals' float precision,
    tiny entries flushed (:func:`flush_tiny`).

    ``floor``: each row's smallest non-zero |r̂_ij| (:func:`row_floors`). Rounding is monotone, so when every
    floor·sqrt(w_i/T) is at least the flush bound no entry of A can be below it and the flush, a no-op then, is
    skipped (it is a tenth of a bootstrap draw). ``overwrite``: the residuals are a copy the caller no longer
    needs and are scaled in place. Neither changes a value.
    """
    r = _float(residuals)
    scale = (np.asarray(w, dtype=np.float64) / (max(r.shape[0], 1) if total is None else total)).astype(r.dtype)
    root = np.sqrt(scale)
    a = np.multiply(r, root[:, None], out=r if overwrite and r is residuals else None)
    if floor is None or not np.all(floor * root >= _flush_bound(a.dtype)):  # NaN: flushed as before
        flush_tiny(a)
    return a


def row_floors(residuals: np.ndarray) -> np.ndarray:
    """Each row's smallest non-zero |entry| (inf for a row of zeros), in the residuals' precision: the ``floor``
    of :func:`scaled_rows`."""
    r = _float(residuals)
    return np.where(r != 0, np.abs(r), np.inf).min(axis=1, initial=np.inf).astype(r.dtype)


def weighted_grams(residuals: np.ndarray, ws: np.ndarray, total: float | None = None) -> np.ndarray:
    """K weighted Gram matrices at once, one per column of ``ws`` (N × K): shape (K, m, m) with m = min(N, d).

    For N ≥ d each is rᵀ · (r·w_k/T), for N < d each is A_k A_kᵀ: one product per weighting, so the temporary is one
    N × d matrix, not the N × K·d stack a single product would need (49 MB for N = 2,000, d = 384, K = 8; one per
    worker thread), with the same values. Computed in the residuals' precision (float64 for the score, float32 for
    the bootstrap and rank stability).
    """
    r = _float(residuals)
    n, d = r.shape
    ws = np.asarray(ws, dtype=np.float64)
    k = ws.shape[1]
    m = min(n, d)
    out = np.empty((k, m, m), dtype=r.dtype)
    for j in range(k):
        out[j] = _gram(scaled_rows(r, ws[:, j], total))
    return out


def weighted_gram(residuals: np.ndarray, w: np.ndarray, total: float | None = None, *,
                  floor: np.ndarray | None = None, overwrite: bool = False) -> np.ndarray:
    """M = (1/T) Σ_i w_i r̂_i r̂_iᵀ on the smaller side (see the module docstring); ``floor`` and ``overwrite`` as
    in :func:`scaled_rows`."""
    return _gram(scaled_rows(residuals, w, total, floor=floor, overwrite=overwrite))


def _gram(a: np.ndarray) -> np.ndarray:
    """AᵀA (N ≥ d) or AAᵀ (N < d): a product of a matrix with its own transpose, which numpy hands to BLAS's
    symmetric rank-k update (half the multiplications of a general product)."""
    return a.T @ a if a.shape[0] >= a.shape[1] else a @ a.T


def logdet_i_plus_gram(gram: np.ndarray, kappa: float) -> float:
    """log det(I + κ G) = 2 Σ_j log L_jj for a symmetric PSD Gram matrix G, L the float64 Cholesky factor of
    I + κG (LAPACK in place, :func:`ecisem_core.metric.cholesky.cholesky_diagonal`)."""
    m = np.multiply(gram, kappa, dtype=np.float64, order="C")  # the float64 copy and the product in one pass
    m.flat[:: m.shape[0] + 1] += 1.0  # the diagonal
    return float(2.0 * np.log(cholesky_diagonal(m)).sum())


def coding_rate_qr(a: np.ndarray, kappa: float) -> float:
    """(1/κ) log det(I + κ AᵀA) of the rows A, from the R factor of a QR decomposition (float64): with
    B = [√κ·A; I] (or [√κ·Aᵀ; I] on the smaller side), BᵀB = I + κAᵀA = RᵀR, so log det = 2 Σ log |R_jj|.

    Backward stable: unlike the Cholesky factor of a formed Gram matrix it cannot fail, however wide the range of
    the weights in A. About twice the work of :func:`weighted_gram` + :func:`coding_rate`; used where rounding of
    the Gram matrix could exceed the identity (the float32 bootstrap with weights above 1, see
    ``uncertainty.FLOAT32_MAX_WEIGHT``)."""
    a = np.asarray(a, dtype=np.float64)
    if a.shape[0] < a.shape[1]:
        a = a.T
    m = a.shape[1]
    if m == 0:
        return 0.0
    r = np.linalg.qr(np.vstack([np.sqrt(kappa) * a, np.eye(m)]), mode="r")
    return 2.0 * float(np.log(np.abs(np.diagonal(r))).sum()) / kappa


def coding_rate(gram: np.ndarray, kappa: float) -> float:
    """(1/κ) log det(I + κ G): ECI_sem of a weighted Gram matrix."""
    return logdet_i_plus_gram(gram, kappa) / kappa


def logdet_i_plus(a: np.ndarray, kappa: float) -> float:
    """log det(I + κ AᵀA), via whichever Gram matrix is smaller (n×n or d×d), Cholesky in float64."""
    a = np.asarray(a, dtype=np.float64)
    n, d = a.shape
    gram = a @ a.T if n < d else a.T @ a
    return logdet_i_plus_gram(gram, kappa)


BATCH_BYTES = 4 << 20
"""Memory of one chunk of stacked N×N matrices in :func:`coding_rates_rowside` (float64). Small on purpose: a
chunk above glibc's largest mmap threshold (32 MB) is a fresh mapping each time, page-faulted in on every call —
with 64 MB chunks the bootstrap and rank stability of 1,200 real MS MARCO triplets spent 0.53–0.74 s here, with
4 MB 0.19 s (with the row-side groups also moved to the worker threads, the demo's whole uncertainty step
went from 2.5–2.9 s to 1.2 s)."""


def row_grams(residuals: np.ndarray) -> np.ndarray:
    """G = R Rᵀ for a stack of residual matrices: (S, N, d) → (S, N, N), in the residuals' precision."""
    r = flush_tiny(np.array(_float(residuals)))
    return r @ r.transpose(0, 2, 1)


def coding_rates_rowside(grams: np.ndarray, scales: np.ndarray, kappa: float) -> np.ndarray:
    """(1/κ) log det(I_N + κ D G D), D = diag(sqrt(scale)), for S sources × K weightings at once.

    ``grams``: (S, N, N) row Gram matrices (:func:`row_grams`); ``scales``: (K, S, N) with scale_i = w_i / T (a row
    with scale 0 drops out: its row and column of D G D are 0). Returns (K, S). Equal to :func:`coding_rate` of
    :func:`weighted_gram` (the N×N side) for each pair, computed in float64 with chunks of :data:`BATCH_BYTES`.
    """
    grams = np.asarray(grams)
    k, s, n = scales.shape
    out = np.empty((k, s))
    if k == 0 or s == 0:
        return out
    if n == 0:
        out[:] = 0.0
        return out
    root = np.sqrt(np.asarray(scales, dtype=np.float64))
    eye = np.eye(n)
    per_matrix = 8 * n * n
    s_step = max(1, BATCH_BYTES // per_matrix)
    for b in range(0, s, s_step):
        g = grams[b:b + s_step].astype(np.float64)
        k_step = max(1, BATCH_BYTES // (per_matrix * g.shape[0]))
        for a in range(0, k, k_step):
            d = root[a:a + k_step, b:b + s_step]
            m = (kappa * g)[None] * d[..., :, None]  # κ·g·d_i·d_j in that order, one chunk-sized array
            m *= d[..., None, :]
            m += eye
            chol = np.linalg.cholesky(m)
            out[a:a + k_step, b:b + s_step] = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1) / kappa
    return out


def _float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)
