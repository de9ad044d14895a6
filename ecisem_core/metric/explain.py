"""Why a source ranks where it does: term-by-term differences, per-triplet contributions, what cuts a weight.

* :func:`term_differences` — Δ of the Shapley contributions of two sources, term by term. Because
  log ECI_sem = v(∅) + φ_c + φ_h + φ_ρ + φ_div for each source (docs/METRIC.md §2.3), the rows sum exactly to
  Δ log ECI_sem = log ECI_sem(A) − log ECI_sem(B). v(∅) = log((1/N) Σ_{r̂_i ≠ 0} discount_i), the false-negative
  discount averaged over the sampled triplets whose residual is not 0, is 0 unless φ > 0 or some residuals vanish;
  it gets its own row ("FN discount, zero residuals") when it differs between the sources.
* :func:`triplet_contributions` — how much each sampled triplet adds to its source's ECI_sem: the drop when its
  term is taken out of M (the 1/N normalisation kept). With B = rows sqrt(w_i/N)·r̂_i and
  q_i = κ · b_iᵀ (I + κ BᵀB)⁻¹ b_i ∈ [0, 1) (matrix determinant lemma),

      contribution_i = ECI_sem − ECI_sem(without i) = −log(1 − q_i) / κ ≥ 0

  A large value needs both a large weight and a residual direction the other triplets do not already cover.
* :func:`weight_cuts` — for each triplet, which term lowers its weight w = c^α h^β ρ^γ the most (the smallest of
  α log c, β log h, γ log ρ), with a plain reading of what that means.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ecisem_core.metric.logdet import scaled_rows, weighted_gram

TERM_LABELS = {
    "phi_c": "target consistency c",
    "phi_h": "semantic locality h",
    "phi_rho": "lexical residuality ρ",
    "phi_div": "diversity (log-det)",
    "base": "FN discount, zero residuals",
}
"""Display names of the Shapley terms (columns of ``ScoreResult.sources``)."""

PHI_COLUMNS = ("phi_c", "phi_h", "phi_rho", "phi_div")
"""The Shapley contributions of log ECI_sem in ``ScoreResult.sources`` (docs/METRIC.md §2.3)."""


def base_values(sources: pd.DataFrame) -> np.ndarray:
    """v(∅) per row of ``sources``: log ECI_sem − (φ_c + φ_h + φ_ρ + φ_div), the part of log ECI_sem no term
    carries (the false-negative discount and any zero residuals; 0 without them)."""
    return np.log(sources["eci_sem"].to_numpy(float)) - sources[list(PHI_COLUMNS)].to_numpy(float).sum(axis=1)

CUT_MEANING = {
    "c": "low target consistency: the encoder hardly prefers the positive (possible false negative)",
    "h": "easy negative: far from the query",
    "rho": "lexical copy: its words are already in the query or positive",
    "none": "no term cuts its weight",
}
"""Plain reading of the term that cuts a triplet's weight the most."""


def term_differences(sources: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Rows (term, label, a, b, delta) with delta = value(A) − value(B) for φ_c, φ_h, φ_ρ, φ_div (and the
    zero-residual base when it differs), then a ``total`` row: Δ log ECI_sem. ``sources`` is
    ``ScoreResult.sources`` (needs ``source``, ``eci_sem`` and the ``phi_*`` columns)."""
    table = sources.set_index("source")
    for name in (a, b):
        if name not in table.index:
            raise KeyError(f"unknown source {name!r}")
    rows = []
    log_a, log_b = (float(np.log(table.at[n, "eci_sem"])) for n in (a, b))
    for col in PHI_COLUMNS:
        va, vb = float(table.at[a, col]), float(table.at[b, col])
        rows.append((col, TERM_LABELS[col], va, vb, va - vb))
    base_a, base_b = base_values(table.loc[[a, b]])
    if abs(base_a - base_b) > 1e-9:
        rows.append(("base", TERM_LABELS["base"], base_a, base_b, base_a - base_b))
    rows.append(("total", "Δ log ECI_sem", log_a, log_b, log_a - log_b))
    return pd.DataFrame(rows, columns=["term", "label", "a", "b", "delta"])


def triplet_contributions(residuals: np.ndarray, w: np.ndarray, kappa: float) -> np.ndarray:
    """Leave-one-out contribution of each row to ECI_sem = (1/κ) log det(I + κM), M = (1/N) Σ w_i r̂_i r̂_iᵀ.

    Computed on the smaller side in float64: with G = B Bᵀ (N ≤ d) q = κ·diag(G (I + κG)⁻¹); otherwise
    q_i = κ·b_iᵀ (I + κBᵀB)⁻¹ b_i. Returns −log(1 − q)/κ (N,).

    Example: two orthogonal unit rows, w = 1, κ = 2: M = I/2, q_i = 2·(1/2)/(1 + 1) = 1/2,
    contribution = ln 2 / 2 each (removing one leaves ECI_sem = ½·ln 2).
    """
    r = np.asarray(residuals, dtype=np.float64)
    n, d = r.shape
    if n == 0:
        return np.zeros(0)
    b = scaled_rows(r, w)
    g = weighted_gram(r, w)  # B Bᵀ (N ≤ d) or BᵀB (N > d)
    if n <= d:
        m = np.eye(n) + kappa * g
        q = kappa * np.einsum("ij,ji->i", g, np.linalg.solve(m, np.eye(n)))
    else:
        m = np.eye(d) + kappa * g
        sol = np.linalg.solve(m, b.T)  # d × n
        q = kappa * np.einsum("ij,ji->i", b, sol)
    q = np.clip(q, 0.0, 1.0 - 1e-12)
    return -np.log1p(-q) / kappa


def weight_cuts(c: np.ndarray, h: np.ndarray, rho: np.ndarray, alpha: float, beta: float,
                gamma: float) -> pd.DataFrame:
    """Per triplet: ``log_c`` = α log c, ``log_h`` = β log h, ``log_rho`` = γ log ρ (each ≤ 0; log w is their
    sum), ``cut`` = the term with the most negative part ("none" when all are 0) and ``meaning``."""
    with np.errstate(divide="ignore"):
        parts = {
            "c": alpha * np.log(np.asarray(c, dtype=np.float64)) if alpha else np.zeros(len(c)),
            "h": beta * np.log(np.asarray(h, dtype=np.float64)) if beta else np.zeros(len(c)),
            "rho": gamma * np.log(np.asarray(rho, dtype=np.float64)) if gamma else np.zeros(len(c)),
        }
    stack = np.stack([parts["c"], parts["h"], parts["rho"]], axis=1)
    idx = np.argmin(stack, axis=1)
    names = np.array(["c", "h", "rho"])[idx]
    names = np.where(stack.min(axis=1) < 0, names, "none")
    return pd.DataFrame({
        "log_c": parts["c"], "log_h": parts["h"], "log_rho": parts["rho"], "cut": names,
        "meaning": [CUT_MEANING[n] for n in names],
    })
