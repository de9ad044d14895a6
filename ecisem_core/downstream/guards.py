"""Guards that keep ``ecisem validate`` from misleading: refuse an evaluation set that cannot rank sources, and say
when the downstream differences are within seed noise.

- **headroom**: an evaluation set with fewer than :data:`MIN_EVAL_QUERIES` queries, or on which the untrained base
  already reaches nDCG@10 ≥ :data:`MAX_BASE_NDCG`, leaves no room for the sources to differ (measured: the MS MARCO
  dev pairs give 0.96 for all-MiniLM-L6-v2, and a held-out split without distractors gives 1.0 for every source);
  the run is refused before any training unless the user insists.
- **seed agreement**: the mean Kendall τ between the source rankings of every pair of seeds — how reproducible
  the downstream ranking is; agreement of a score cannot meaningfully exceed it.
- **noise**: the spread of the sources' mean nDCG@10 compared with the seed-to-seed standard deviation.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from ecisem_core.downstream.agreement import rank_correlations

MAX_BASE_NDCG: float = 0.9
"""Refuse when the untrained base reaches at least this nDCG@10 on the evaluation set."""
MIN_EVAL_QUERIES: int = 20
"""Refuse evaluation sets with fewer queries."""
NOISE_RATIO: float = 2.0
"""Warn when the range of the sources' mean nDCG@10 is below this multiple of the median seed-to-seed sd."""


def headroom_problems(base_ndcg: float | None, n_queries: int) -> list[str]:
    """Why an evaluation set cannot rank sources (empty when it can)."""
    problems = []
    if n_queries < MIN_EVAL_QUERIES:
        problems.append(f"the evaluation set has {n_queries} queries (fewer than {MIN_EVAL_QUERIES}): "
                        "differences between sources would be noise")
    if base_ndcg is not None and base_ndcg >= MAX_BASE_NDCG:
        problems.append(f"the untrained base already reaches nDCG@10 {base_ndcg:.3f} (>= {MAX_BASE_NDCG}) on the "
                        "evaluation set, so fine-tuning cannot separate the sources; use a harder evaluation set "
                        "(more passages, hard distractors, another domain)")
    return problems


def seed_kendall(runs: pd.DataFrame, metric: str = "ndcg10") -> float | None:
    """Mean Kendall τ between the source rankings of every pair of seeds (``runs``: source, seed, metric); None
    with fewer than two seeds or two sources."""
    piv = runs.pivot_table(index="source", columns="seed", values=metric).dropna()
    if piv.shape[1] < 2 or piv.shape[0] < 2:
        return None
    taus = [rank_correlations(piv[a].to_numpy(), piv[b].to_numpy())[0]
            for a, b in itertools.combinations(piv.columns, 2)]
    taus = [t for t in taus if np.isfinite(t)]
    return float(np.mean(taus)) if taus else None


def noise_warning(table: pd.DataFrame, metric: str = "ndcg10") -> str | None:
    """A warning when the sources' mean ``metric`` differ by less than :data:`NOISE_RATIO` × the median sd over
    seeds, or when a single seed cannot tell (``table``: one row per trained source with ``<metric>_mean``,
    ``<metric>_sd``, ``n_seeds``)."""
    if len(table) < 2:
        return None
    spread = float(table[f"{metric}_mean"].max() - table[f"{metric}_mean"].min())
    if int(table["n_seeds"].min()) < 2:
        return (f"one seed only: the sources' {metric} differ by {spread:.4f} at most, and without a second seed "
                "there is no way to tell whether that exceeds training noise (use --seeds 0 1 2)")
    sd = float(np.nanmedian(table[f"{metric}_sd"].to_numpy(float)))
    if spread < NOISE_RATIO * sd:
        return (f"the sources' mean {metric} span {spread:.4f}, less than {NOISE_RATIO:g}× the seed-to-seed sd "
                f"({sd:.4f}): the downstream ranking is mostly seed noise, and so is any agreement with it")
    return None
