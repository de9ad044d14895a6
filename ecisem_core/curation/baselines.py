"""How well fn_score finds false negatives against the baselines, on labelled triplets: tie-aware ROC AUC,
precision@k, and the flag precision / recall of each method (:func:`fn_baselines`).

The baselines: ranking by s_qn alone, the relative-margin rule s_qn > s_qp − |s_qp|·m (NV-Retriever's
TopK-PercPos) and the absolute-margin rule s_qn > s_qp − δ (NV-Retriever's TopK-MarginPos),
:mod:`ecisem_core.curation.rules`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.curation.fn_score import flag_triplets
from ecisem_core.curation.rules import FlagConfig, absolute_margin_rule, relative_margin_rule


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank, as scipy's ``rankdata(method="average")`` (float64; all
    NaN when any value is NaN). In numpy: ``scipy.stats`` takes 0.4 s to import, on every start of the app.

    >>> average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0 or np.isnan(x).any():
        return np.full(x.shape, np.nan)
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]  # the first of each group of equal values
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], x.size]  # positions start … end − 1 (0-based) share the ranks start + 1 … end
    ranks = np.empty(x.size)
    ranks[order] = ((starts + ends + 1) / 2.0)[np.cumsum(first) - 1]
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Tie-aware ROC AUC = (Σ ranks of positives − n₁(n₁+1)/2) / (n₁·n₀) (ties count ½); NaN if a class is empty.

    >>> roc_auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.5, 0.5]))
    0.875
    """
    y = np.asarray(labels).astype(bool)
    n1 = int(y.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def precision_at_k(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of positives among the k highest scores, ties at the cut shared pro rata (expected value under a
    random tie break), so the result does not depend on row order.

    >>> precision_at_k(np.array([1, 0, 1, 0]), np.array([0.9, 0.5, 0.5, 0.1]), 2)
    0.75
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    k = int(min(max(k, 0), s.size))
    if k == 0:
        return float("nan")
    threshold = np.sort(s)[::-1][k - 1]
    above = s > threshold
    at = s == threshold
    n_above = int(above.sum())
    hits = y[above].sum() + (k - n_above) * (y[at].sum() / at.sum())
    return float(hits / k)


def fn_baselines(
    table: pd.DataFrame, labels: Any, k: int | None = None, config: FlagConfig = FlagConfig()
) -> pd.DataFrame:
    """fn_score against the baselines on labelled triplets.

    Methods (row per method): ``fn_score``; ``s_qn`` (rank by the negative's similarity); ``relative-margin
    rule`` (score (s_qn − s_qp)/|s_qp|, flag s_qn > s_qp − |s_qp|·m); ``absolute-margin rule`` (score s_qn − s_qp,
    flag s_qn > s_qp − δ). Rows whose label is NaN are left out.

    Args:
        table: triplet table with s_qp, s_qn, s_pn (and ``fn_score``/``fn_flag`` if already flagged).
        labels: per row 1 (false negative), 0 (true negative) or NaN; aligned with ``table`` (array or a
            Series on its index).
        k: cut-off of precision@k; default the number of labelled false negatives (R-precision).

    Returns:
        DataFrame with columns method, auc, precision_at_k, k, flag_precision, flag_recall, n, n_fn.
    """
    y = pd.Series(labels, index=table.index) if not isinstance(labels, pd.Series) else labels.reindex(table.index)
    y = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
    keep = np.isfinite(y)
    if "fn_score" in table.columns and "fn_flag" in table.columns:
        flags = table[["fn_score", "fn_flag"]]
    else:
        flags = flag_triplets(table, config)
    yk = y[keep] > 0.5
    s_qp = table["s_qp"].to_numpy(dtype=np.float64)[keep]
    s_qn = table["s_qn"].to_numpy(dtype=np.float64)[keep]
    methods: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        ("fn_score", flags["fn_score"].to_numpy(dtype=np.float64)[keep], flags["fn_flag"].to_numpy(dtype=bool)[keep]),
        ("s_qn", s_qn, None),
        ("relative-margin rule", (s_qn - s_qp) / np.maximum(np.abs(s_qp), 1e-9),
         relative_margin_rule(s_qp, s_qn, config.rel_margin)),
        ("absolute-margin rule", s_qn - s_qp, absolute_margin_rule(s_qp, s_qn, config.abs_margin)),
    ]
    n_fn = int(yk.sum())
    kk = n_fn if k is None else int(k)
    rows = []
    for name, score, flag in methods:
        if flag is not None and flag.any():
            prec = float(yk[flag].mean())
        else:
            prec = float("nan")
        rec = float(yk[flag].sum() / n_fn) if (flag is not None and n_fn) else float("nan")
        rows.append(
            {
                "method": name,
                "auc": roc_auc(yk, score),
                "precision_at_k": precision_at_k(yk, score, kk) if kk > 0 else float("nan"),
                "k": kk,
                "flag_precision": prec,
                "flag_recall": rec,
                "n": int(keep.sum()),
                "n_fn": n_fn,
            }
        )
    return pd.DataFrame(rows)
