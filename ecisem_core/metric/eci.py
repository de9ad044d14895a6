"""ECI_sem (our construction, ECI_SPEC §2), classic ECI (v1, exact, ECI_SPEC §1) and exact Shapley contributions.

ECI_sem over N sampled triplets with weights w_i and residual directions r̂_i:

    M        = (1/N) Σ_i w_i r̂_i r̂_iᵀ
    ECI_sem  = (1/κ) · log det(I + κ M)
    info     = tr M  (= mean(w) when every r̂_i ≠ 0)
    D        = ECI_sem / info ∈ (0, 1]

log det is computed on the smaller side, log det(I_d + κ AᵀA) = log det(I_N + κ AAᵀ) with A = sqrt(w/N)·r̂,
by Cholesky in float64.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

PLAYERS = ("c", "h", "rho", "div")
"""The four Shapley players: target consistency (α), semantic locality (β), lexical residuality (γ), diversity (κ)."""


def logdet_i_plus(a: np.ndarray, kappa: float) -> float:
    """log det(I + κ AᵀA), via whichever Gram matrix is smaller (n×n or d×d), Cholesky in float64."""
    a = np.asarray(a, dtype=np.float64)
    n, d = a.shape
    gram = a @ a.T if n < d else a.T @ a
    return logdet_i_plus_gram(gram, kappa)


def logdet_i_plus_gram(gram: np.ndarray, kappa: float) -> float:
    """log det(I + κ G) for a symmetric PSD Gram matrix G (float64 Cholesky)."""
    m = np.asarray(gram, dtype=np.float64) * kappa
    m[np.diag_indices_from(m)] += 1.0
    chol = np.linalg.cholesky(m)
    return float(2.0 * np.log(np.diag(chol)).sum())


def weighted_gram(residuals: np.ndarray, w: np.ndarray) -> np.ndarray:
    """M = (1/N) Σ_i w_i r̂_i r̂_iᵀ on the side that is smaller: d×d when N ≥ d, else the N×N matrix
    A Aᵀ with A = sqrt(w/N)·r̂ (same non-zero spectrum)."""
    r = np.asarray(residuals, dtype=np.float64)
    n, d = r.shape
    scale = np.asarray(w, dtype=np.float64) / max(n, 1)
    if n >= d:
        return r.T @ (r * scale[:, None])
    s = np.sqrt(scale)
    a = r * s[:, None]
    return a @ a.T


@dataclass(frozen=True)
class EciSem:
    """ECI_sem of one source: ``score`` = (1/κ) log det(I + κM), ``info`` = tr M, ``diversity`` = score/info."""

    score: float
    info: float
    kappa: float
    dim: int

    @property
    def diversity(self) -> float:
        return self.score / self.info if self.info > 0 else float("nan")

    @property
    def per_dim(self) -> float:
        return self.score / self.dim


def eci_sem(residuals: np.ndarray, w: np.ndarray, kappa: float) -> EciSem:
    """ECI_sem, info and diversity for residual directions (N×d) and weights (N,).

    Tiny example (tests/test_metric.py): r̂ = e₁, e₂ in R², w = (1, 1), κ = 2 → M = I/2,
    ECI_sem = ½·log det(2I) = ln 2, info = 1, D = ln 2.
    """
    r = np.asarray(residuals, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, d = r.shape
    if n == 0:
        return EciSem(float("nan"), float("nan"), kappa, d)
    gram = weighted_gram(r, w)
    info = float(np.trace(gram))
    return EciSem(logdet_i_plus_gram(gram, kappa) / kappa, info, kappa, d)


def classic_eci(k: float, signal: float, margin: float) -> float:
    """Classic ECI (v1): IC · DE with IC = ln(1 + K) and DE = 2·S_n·Δ_max/(S_n + Δ_max) (0 if either ≤ 0).

    >>> round(classic_eci(50, 0.577, 0.199), 2)   # paper Table 1, BM25
    1.16
    """
    ic = math.log1p(k)
    de = 0.0 if signal <= 0 or margin <= 0 else 2.0 * signal * margin / (signal + margin)
    return ic * de


@dataclass(frozen=True)
class ClassicEci:
    """Classic ECI and its inputs for one source."""

    k: float
    signal: float
    margin: float
    eci: float


def classic_eci_from_sims(s_qp: np.ndarray, s_qn: np.ndarray, query_codes: np.ndarray) -> ClassicEci:
    """Classic ECI of one source from all its (q, n) pairs: K = median negatives per query,
    S_n = mean s_qn, Δ_max = mean(s_qp − s_qn)."""
    s_qp, s_qn = np.asarray(s_qp, np.float64), np.asarray(s_qn, np.float64)
    if s_qn.size == 0:
        return ClassicEci(0.0, float("nan"), float("nan"), float("nan"))
    counts = np.bincount(np.unique(query_codes, return_inverse=True)[1])
    k = float(np.median(counts))
    signal = float(s_qn.mean())
    margin = float((s_qp - s_qn).mean())
    return ClassicEci(k, signal, margin, classic_eci(k, signal, margin))


def shapley_weights(n_players: int = 4) -> dict[int, float]:
    """|S|!(n−|S|−1)!/n! by coalition size |S|."""
    f = math.factorial
    return {s: f(s) * f(n_players - s - 1) / f(n_players) for s in range(n_players)}


def shapley_values(value: dict[frozenset[str], float], players: tuple[str, ...] = PLAYERS) -> dict[str, float]:
    """Exact Shapley values φ_i = Σ_{S ⊆ P∖{i}} |S|!(n−|S|−1)!/n! · (v(S ∪ {i}) − v(S)).

    ``value`` maps every coalition (frozenset of player names) to v(S). Σ φ_i = v(P) − v(∅).
    """
    n = len(players)
    wts = shapley_weights(n)
    phi = {}
    for i in players:
        others = [p for p in players if p != i]
        total = 0.0
        for size in range(n):
            for coal in itertools.combinations(others, size):
                s = frozenset(coal)
                total += wts[size] * (value[s | {i}] - value[s])
        phi[i] = total
    return phi


def coalitions(players: tuple[str, ...] = PLAYERS) -> list[frozenset[str]]:
    """All 2^n coalitions."""
    return [frozenset(c) for k in range(len(players) + 1) for c in itertools.combinations(players, k)]


def eci_sem_contributions(
    residuals: np.ndarray, c: np.ndarray, h: np.ndarray, rho: np.ndarray,
    alpha: float, beta: float, gamma: float, kappa: float,
) -> tuple[EciSem, dict[str, float]]:
    """ECI_sem and the exact Shapley values of log ECI_sem over the players c (α), h (β), ρ (γ), diversity (κ).

    A player that is off has exponent 0 (term) or κ → 0 (diversity: the score is info = tr M). With everything
    off v(∅) = log tr M(w = 1) = log(share of triplets with r̂ ≠ 0), which is 0 unless some residuals vanish;
    Σ φ = log ECI_sem − v(∅). All 8 Gram matrices are computed in one matrix product.
    """
    from ecisem_core.metric.terms import weights

    r = np.asarray(residuals, dtype=np.float64)
    n, d = r.shape
    term_sets = [frozenset(s) for k in range(4) for s in itertools.combinations(("c", "h", "rho"), k)]
    ws = np.stack([
        weights(c, h, rho, alpha if "c" in s else 0.0, beta if "h" in s else 0.0, gamma if "rho" in s else 0.0)
        for s in term_sets
    ], axis=1) / max(n, 1)  # n × 8
    if n >= d:
        grams = (r.T @ (r[:, None, :] * ws[:, :, None]).reshape(n, -1)).reshape(d, len(term_sets), d)
        grams = grams.transpose(1, 0, 2)
    else:
        grams = np.stack([(r * np.sqrt(ws[:, k])[:, None]) @ (r * np.sqrt(ws[:, k])[:, None]).T
                          for k in range(len(term_sets))])
    value: dict[frozenset[str], float] = {}
    full = None
    with np.errstate(divide="ignore"):
        for k, s in enumerate(term_sets):
            info = float(np.trace(grams[k]))
            score = logdet_i_plus_gram(grams[k], kappa) / kappa
            value[s] = math.log(info) if info > 0 else -math.inf
            value[s | {"div"}] = math.log(score) if score > 0 else -math.inf
            if s == frozenset(("c", "h", "rho")):
                full = EciSem(score, info, kappa, d)
    assert full is not None
    if not all(math.isfinite(v) for v in value.values()):
        return full, {p: float("nan") for p in PLAYERS}
    return full, shapley_values(value)
