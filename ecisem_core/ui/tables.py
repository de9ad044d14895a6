"""Display tables of the dashboard and the plain explanation of each column (pure pandas; no metric maths)."""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMN_HELP: dict[str, str] = {
    "rank": "Rank by ECI_sem among the selected sources (1 = most useful negatives by this score).",
    "source": "Where the negatives come from (BM25, dense mining, LLM, a hybrid…).",
    "eci_sem": "ECI_sem = (1/κ)·log det(I + κM), M = mean of w·r̂r̂ᵀ over the sampled triplets: weighted, "
               "diverse residual information. Higher is better. Our construction (see the README).",
    "ci": "95% interval of ECI_sem: bootstrap over queries (B resamples), centred on the estimate.",
    "eci_sem_per_dim": "ECI_sem divided by the embedding dimension d (comparable across encoders).",
    "info": "tr M = mean weight w = c^α·h^β·ρ^γ: the first-order value, ignoring redundancy.",
    "diversity": "ECI_sem / info ∈ (0, 1]: 1 when residual directions are spread, low when redundant.",
    "eci_v1": "Classic ECI (paper v1, exact): ln(1+K) × harmonic mean of hardness S_n and margin Δ_max.",
    "n": "Triplets of this source in the data.",
    "n_sampled": "Triplets sampled for ECI_sem (N per source, fixed seed).",
    "fn_rate": "Share of this source's triplets flagged as likely false negatives (fixed flagger settings).",
    "stability": "Share of jittered settings (τ and exponents ×0.5–1.5) under which the source keeps its rank.",
}
"""Tooltip of each leaderboard column."""

STABLE, SHAKY = 0.8, 0.5
"""Stability badge thresholds: ≥ STABLE "stable", ≥ SHAKY "shaky", below "fragile"."""


def stability_badge(value: float | None) -> str:
    """A short badge for a rank-stability share (``None``/NaN: not computed yet)."""
    if value is None or not np.isfinite(value):
        return "computing…"
    pct = f"{value:.0%}"
    if value >= STABLE:
        return f"🟢 stable · {pct}"
    if value >= SHAKY:
        return f"🟡 shaky · {pct}"
    return f"🔴 fragile · {pct}"


def _ci_text(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "—"
    return f"{lo:.4g} – {hi:.4g}"


def leaderboard(sources: pd.DataFrame, unc: pd.DataFrame | None) -> pd.DataFrame:
    """The leaderboard table: the instant columns of ``sources`` (``ScoreResult.sources`` without uncertainty)
    plus CI and stability from ``unc`` when it is the result for the same settings (else "computing…")."""
    t = sources.copy()
    if unc is not None:
        u = unc.set_index("source").reindex(t["source"])
        t["ci"] = [_ci_text(lo, hi) for lo, hi in zip(u["ci_low"], u["ci_high"])]
        t["stability_badge"] = [stability_badge(v) for v in u["stability"]]
        t["stability"] = u["stability"].to_numpy()
    else:
        t["ci"] = "computing…"
        t["stability_badge"] = "computing…"
    return t[["rank", "source", "eci_sem", "ci", "eci_sem_per_dim", "info", "diversity", "eci_v1", "n",
              "n_sampled", "fn_rate", "stability_badge"]]


def csv_table(sources: pd.DataFrame, unc: pd.DataFrame | None, contrib: pd.DataFrame | None) -> pd.DataFrame:
    """The table written by the CSV download: the columns of ``sources.csv`` (DESIGN.md) and the extras, with the
    interval/stability columns from ``unc`` and the φ columns from ``contrib`` when computed (empty otherwise)."""
    t = sources.copy()
    for other, cols in ((unc, ["ci_low", "ci_high", "stability"]), (contrib, ["phi_c", "phi_h", "phi_rho", "phi_div"])):
        if other is not None:
            o = other.set_index("source").reindex(t["source"])
            for c in cols:
                t[c] = o[c].to_numpy()
    return t
