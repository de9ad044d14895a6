"""Classic ECI, exactly as published in v1 of Sinha, Seetharaman & Bansal (arXiv 2603.20990 v1; docs/METRIC.md §1):

    ECI = IC · DE,  IC = ln(1 + K),  DE = 2·S_n·Δ_max / (S_n + Δ_max)  (0 when S_n ≤ 0 or Δ_max ≤ 0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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
