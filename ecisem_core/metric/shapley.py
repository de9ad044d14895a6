"""Exact Shapley contributions of the four parts of ECI_sem to log ECI_sem (docs/METRIC.md §2.3).

Players: c (exponent α), h (β), ρ (γ) and diversity (κ); "off" means exponent 0, or κ → 0 for diversity, where
the score tends to info = tr M. φ_i = Σ_{S ⊆ P∖{i}} |S|!(n−|S|−1)!/n! · (v(S ∪ {i}) − v(S)) (Shapley 1953), and
Σ φ = log ECI_sem − v(∅).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ecisem_core.metric.eci_sem import EciSem
from ecisem_core.metric.logdet import coding_rate, weighted_grams
from ecisem_core.metric.terms import weights

PLAYERS = ("c", "h", "rho", "div")
"""The four Shapley players: target consistency (α), semantic locality (β), lexical residuality (γ), diversity (κ)."""


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
    alpha: float, beta: float, gamma: float, kappa: float, discount: np.ndarray | None = None,
) -> tuple[EciSem, dict[str, float]]:
    """ECI_sem and the exact Shapley values of log ECI_sem over the players c (α), h (β), ρ (γ), diversity (κ).

    A player that is off has exponent 0 (term) or κ → 0 (diversity: the score is info = tr M). With everything
    off the weights are the false-negative discount alone (1 without it): v(∅) = log tr M = log((1/N) Σ_{r̂_i ≠ 0}
    discount_i), which is 0 unless φ > 0 or some residuals vanish; Σ φ = log ECI_sem − v(∅). All 8 Gram matrices
    are computed in one matrix product.
    """
    r = np.asarray(residuals, dtype=np.float64)
    d = r.shape[1]
    term_sets = [frozenset(s) for k in range(4) for s in itertools.combinations(("c", "h", "rho"), k)]
    ws = np.stack([
        weights(c, h, rho, alpha if "c" in s else 0.0, beta if "h" in s else 0.0, gamma if "rho" in s else 0.0)
        for s in term_sets
    ], axis=1)  # n × 8
    if discount is not None:  # a fixed factor of every coalition's weights (the false-negative discount)
        ws = ws * np.asarray(discount, dtype=np.float64)[:, None]
    grams = weighted_grams(r, ws)
    value: dict[frozenset[str], float] = {}
    full = None
    with np.errstate(divide="ignore"):
        for k, s in enumerate(term_sets):
            info = float(np.trace(grams[k]))
            score = coding_rate(grams[k], kappa)
            value[s] = math.log(info) if info > 0 else -math.inf
            value[s | {"div"}] = math.log(score) if score > 0 else -math.inf
            if s == frozenset(("c", "h", "rho")):
                full = EciSem(score, info, kappa, d)
    assert full is not None
    if not all(math.isfinite(v) for v in value.values()):
        return full, {p: float("nan") for p in PLAYERS}
    return full, shapley_values(value)
