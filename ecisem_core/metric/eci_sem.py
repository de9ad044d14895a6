"""ECI_sem of one source (docs/METRIC.md §2.2; our construction of the semantic score of Sinha, Seetharaman & Bansal,
arXiv 2603.20990 v3):

    M        = (1/N) Σ_i w_i r̂_i r̂_iᵀ
    ECI_sem  = (1/κ) · log det(I + κ M)
    info     = tr M  (= mean(w) when every r̂_i ≠ 0)
    D        = ECI_sem / info ∈ (0, 1]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecisem_core.metric.logdet import coding_rate, weighted_gram


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


def eci_sem(residuals: np.ndarray, w: np.ndarray, kappa: float, floor: np.ndarray | None = None) -> EciSem:
    """ECI_sem, info and diversity for residual directions (N×d) and weights (N,). ``floor``: the rows'
    :func:`~ecisem_core.metric.logdet.row_floors`, which spares the Gram matrix a pass (same values).

    Tiny example (tests/test_metric.py): r̂ = e₁, e₂ in R², w = (1, 1), κ = 2 → M = I/2,
    ECI_sem = ½·log det(2I) = ln 2, info = 1, D = ln 2.
    """
    r = np.asarray(residuals, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    n, d = r.shape
    if n == 0:
        return EciSem(float("nan"), float("nan"), kappa, d)
    gram = weighted_gram(r, w, floor=floor)
    return EciSem(coding_rate(gram, kappa), float(np.trace(gram)), kappa, d)
