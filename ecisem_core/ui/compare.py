"""The Compare page's logic (no Streamlit): two settings — the sidebar's, or a named preset — side by side, their
rankings, the rank change of each source, how far the two rankings agree and which terms moved each score."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ecisem_core.config import ScoreConfig
from ecisem_core.downstream.agreement import rank_correlations
from ecisem_core.metric.explain import PHI_COLUMNS, base_values
from ecisem_core.metric.presets import FITTED_DIM, get_preset, presets
from ecisem_core.report.figures import TERM_NAMES
from ecisem_core.ui.tables import rank_arrow

SIDEBAR = "sidebar"
"""The choice that stands for the sidebar's current settings."""


def choices() -> list[str]:
    """What each side may show: the sidebar's settings, then every preset."""
    return [SIDEBAR, *presets()]


def label(choice: str) -> str:
    if choice == SIDEBAR:
        return "the sidebar's settings"
    return f"preset {choice} — {presets()[choice].title}"


def config_of(choice: str, sidebar: ScoreConfig, dim: int) -> ScoreConfig:
    """The ScoreConfig of a choice: the sidebar's as it is, or a preset's with its κ as the same multiple of d
    (the sample size and seed stay the sidebar's, so both sides score the same sample)."""
    if choice == SIDEBAR:
        return sidebar
    cfg = get_preset(choice).config
    kappa = None if cfg.kappa is None else float(cfg.kappa) / FITTED_DIM * dim
    return cfg.replace(kappa=kappa, sample_size=sidebar.sample_size, seed=sidebar.seed)


def compare_table(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per source (in A's order): rank and ECI_sem under A and B and the move from A to B."""
    left = a.set_index("source")[["rank", "eci_sem"]]
    right = b.set_index("source")[["rank", "eci_sem"]].reindex(left.index)
    change = left["rank"].to_numpy(float) - right["rank"].to_numpy(float)
    return pd.DataFrame({
        "source": left.index.astype(str),
        "rank A": left["rank"].to_numpy(), "rank B": right["rank"].to_numpy(),
        "A → B": [rank_arrow(c) for c in change],
        "ECI_sem A": left["eci_sem"].to_numpy(float), "ECI_sem B": right["eci_sem"].to_numpy(float),
    }).sort_values("rank A", kind="stable").reset_index(drop=True)


def term_changes(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Which terms moved each score from A to B: per source (in A's rank order) the change of log ECI_sem, of each
    Shapley contribution, Δφ_t = φ_t(B) − φ_t(A), and of the base v(∅) (the scores themselves are in
    :func:`compare_table`).

    For one setting log ECI_sem = v(∅) + φ_c + φ_h + φ_ρ + φ_div exactly (Shapley efficiency; v(∅) = log of the
    false-negative discount averaged over the triplets with a non-zero residual, 0 unless φ > 0 or some residuals
    vanish, docs/METRIC.md §2.3), so the five Δ columns sum to Δ log ECI_sem: the table splits each source's move
    among the terms. ``a`` and ``b`` are ``ScoreResult.sources`` computed with contributions.
    """
    left = a.set_index("source").sort_values("rank", kind="stable")
    right = b.set_index("source").reindex(left.index)
    log_a = np.log(left["eci_sem"].to_numpy(float))
    log_b = np.log(right["eci_sem"].to_numpy(float))
    out = {"source": left.index.astype(str), "Δ log ECI_sem": log_b - log_a}
    for col in PHI_COLUMNS:
        out[f"Δ {TERM_NAMES[col]}"] = right[col].to_numpy(float) - left[col].to_numpy(float)
    out[f"Δ {TERM_NAMES['base']}"] = base_values(right) - base_values(left)
    return pd.DataFrame(out).reset_index(drop=True)


def agreement(table: pd.DataFrame) -> float:
    """Kendall τ between the two rankings of :func:`compare_table` (1: the same order)."""
    if len(table) < 2:
        return float("nan")
    return float(rank_correlations(-table["rank A"].to_numpy(float), -table["rank B"].to_numpy(float))[0])


SHOWN = (("tau", "τ"), ("alpha", "α"), ("beta", "β"), ("gamma", "γ"), ("fn_penalty", "φ"))


def settings_table(a: ScoreConfig, b: ScoreConfig, dim: int) -> pd.DataFrame:
    """The metric settings of both sides (κ as κ/d), a row each, with whether they differ."""
    rows = [(sym, float(getattr(a, name)), float(getattr(b, name))) for name, sym in SHOWN]
    rows.append(("κ/d", a.kappa_for(dim) / dim, b.kappa_for(dim) / dim))
    return pd.DataFrame([{"setting": s, "A": x, "B": y, "differs": "yes" if not np.isclose(x, y) else ""}
                         for s, x, y in rows])
