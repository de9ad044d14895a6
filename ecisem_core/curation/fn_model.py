"""Learned false-negative scorer from annotator verdicts, and resampling into a cleaned training file.

In the spirit of RRRA (an adapter over frozen bi-encoder representations that estimates the chance that a hard
negative is a false negative), but deliberately small: a logistic regression

    P(false negative | triplet) = σ(β₀ + Σ_j β_j · standardised feature_j)

over the evidence :func:`ecisem_core.curation.features.triplet_features` computes from the frozen embeddings'
similarities and the tokens (s_qp, s_qn, s_pn, Δ, c, relative gap, token Jaccard, key-term coverage, lengths,
boilerplate/preamble indicators). Labels are the annotators' consensus per item
(:func:`ecisem_core.curation.verdicts.item_consensus`). Quality is reported as stratified cross-validated ROC AUC
(folds grouped by query when possible, so triplets of one query never sit on both sides), next to the hand-set
``fn_score``'s AUC on the same items.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.curation.baselines import roc_auc
from ecisem_core.curation.features import triplet_features
from ecisem_core.curation.fn_score import flag_triplets
from ecisem_core.curation.rules import FlagConfig
from ecisem_core.curation.verdicts import item_consensus
from ecisem_core.errors import InputError

N_MIN: int = 10
"""Verdicts of *each* class (false negative, true negative) needed before a model is trained."""
CV_FOLDS: int = 5
"""Cross-validation folds (fewer when a class has fewer items)."""
C_REG: float = 0.1
"""Inverse L2 regularisation strength of the logistic regression. 0.1 (was 1): with 40–100 verdicts it gave
+0.004 to +0.02 held-out ROC AUC on the demo, MED and CISI (20 seeds) and the same at 200 (README, "The review
queue's learning curve")."""
MODEL_FEATURES: tuple[str, ...] = (
    "s_qp", "s_qn", "s_pn", "delta", "c", "rel_gap", "jaccard", "key_coverage", "log_n_key_terms",
    "log_n_tokens", "len_ratio", "log_boilerplate_count", "boilerplate_share", "pattern_hit", "identical",
)
"""Model inputs (counts enter as log(1 + x))."""
RESAMPLE_MODES: tuple[str, ...] = ("drop", "weight")
"""``drop``: remove rows with p ≥ threshold; ``weight``: keep them with weight 1 − p (others weight 1)."""


class NotEnoughVerdicts(InputError):
    """Too few verdicts of a class to train (the message says how many there are and how many are needed)."""


def model_features(table: pd.DataFrame, config: FlagConfig = FlagConfig()) -> pd.DataFrame:
    """:data:`MODEL_FEATURES` for every row (from :func:`~ecisem_core.curation.features.triplet_features`)."""
    f = triplet_features(table, config)
    out = pd.DataFrame(index=table.index)
    for name in MODEL_FEATURES:
        if name.startswith("log_"):
            out[name] = np.log1p(f[name[4:]].to_numpy(dtype=np.float64))
        else:
            out[name] = f[name].to_numpy(dtype=np.float64)
    return out


def labels_from_verdicts(table: pd.DataFrame, verdicts: pd.DataFrame, *, undecided: float = np.nan) -> np.ndarray:
    """Per row of ``table``: 1.0 (consensus false negative), 0.0 (true negative) or NaN (not judged / undecided).
    ``undecided``: the value for a judged item with no majority (a tie, or only "unsure"); NaN by default, like an
    item nobody judged.

    Rows and items are matched on (query_id, negative_id); ``verdicts`` are current verdicts as returned by
    :meth:`ecisem_core.curation.annotations.AnnotationStore.verdicts` (several batches may be concatenated: an item judged
    in two batches counts each answer).
    """
    for frame, name in ((table, "table"), (verdicts, "verdicts")):
        missing = [c for c in ("query_id", "negative_id") if c not in frame.columns]
        if missing:
            raise InputError(f"{name} lacks column(s) {missing} needed to match verdicts to triplets")
    if verdicts.empty:
        return np.full(len(table), np.nan)
    keyed = verdicts.assign(item_id=verdicts["query_id"].astype(str) + "\x00" + verdicts["negative_id"].astype(str))
    cons = item_consensus(keyed).set_index("item_id")["label"].fillna(undecided)
    keys = table["query_id"].astype(str) + "\x00" + table["negative_id"].astype(str)
    return keys.map(cons).to_numpy(dtype=np.float64)


@dataclass
class FnModel:
    """A trained scorer: the scikit-learn pipeline, its features, and its cross-validated quality.

    Attributes:
        pipeline: StandardScaler → LogisticRegression, fit on all labelled rows.
        cv_auc, cv_auc_std: mean and standard deviation of the per-fold ROC AUC.
        baseline_auc: the hand-set fn_score's AUC on the same labelled rows.
        n_false_negative, n_true_negative, folds: what it was trained on.
        coefficients: feature → β (on standardised features).
    """

    pipeline: Any
    cv_auc: float
    cv_auc_std: float
    baseline_auc: float
    n_false_negative: int
    n_true_negative: int
    folds: int
    coefficients: dict[str, float] = field(default_factory=dict)
    config: FlagConfig = field(default_factory=FlagConfig)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """P(false negative) per row of ``table``."""
        return predict(self, table)


def _pipeline(c_reg: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=c_reg, class_weight="balanced", max_iter=2000, random_state=seed)
    )


def _splitter(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> Any:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if groups is not None and len(np.unique(groups)) >= 2 * folds:
        return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), y, groups
        )
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)


def train_fn_model(
    table: pd.DataFrame,
    labels: np.ndarray,
    n_min: int = N_MIN,
    folds: int = CV_FOLDS,
    seed: int = 0,
    config: FlagConfig = FlagConfig(),
    c_reg: float = C_REG,
    *,
    features: pd.DataFrame | None = None,
) -> FnModel:
    """Fit the scorer on rows with a label (1 false negative / 0 true negative; NaN rows are ignored).

    Raises :class:`NotEnoughVerdicts` unless each class has at least ``n_min`` rows. Folds:
    min(``folds``, smaller class size), grouped by ``query_id`` when there are enough queries.
    ``features``: :func:`model_features` of ``table`` when already computed (a loop that retrains often, e.g.
    :func:`ecisem_core.curation.active.simulate_queue`, computes them once).
    """
    y_all = np.asarray(labels, dtype=np.float64)
    if y_all.shape[0] != len(table):
        raise InputError(f"{y_all.shape[0]} labels for {len(table)} triplets")
    keep = np.isfinite(y_all)
    y = (y_all[keep] > 0.5).astype(int)
    n_fn, n_tn = int(y.sum()), int((1 - y).sum())
    if n_fn < n_min or n_tn < n_min:
        raise NotEnoughVerdicts(
            f"the learned scorer needs at least {n_min} verdicts of each class; "
            f"have {n_fn} false negative(s) and {n_tn} true negative(s)"
        )
    sub = table.loc[keep]
    # features of the whole table, then the labelled rows: the IDF (key-term coverage) and boilerplate counts are
    # then those predict() sees on the same table, not those of the judged subset alone
    x = (model_features(table, config) if features is None else _checked(features, table)).loc[keep].to_numpy()
    groups = sub["query_id"].astype(str).to_numpy() if "query_id" in sub.columns else None
    k = int(min(folds, n_fn, n_tn))
    aucs = []
    for train, test in _splitter(y, groups, k, seed):
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
            continue
        model = _pipeline(c_reg, seed).fit(x[train], y[train])
        aucs.append(roc_auc(y[test], model.predict_proba(x[test])[:, 1]))
    pipeline = _pipeline(c_reg, seed).fit(x, y)
    if "fn_score" in sub.columns:
        base_scores = sub["fn_score"].to_numpy(dtype=np.float64)
    else:
        base_scores = flag_triplets(sub, config)["fn_score"].to_numpy()
    coefs = pipeline[-1].coef_.ravel()
    return FnModel(
        pipeline=pipeline,
        cv_auc=float(np.mean(aucs)) if aucs else float("nan"),
        cv_auc_std=float(np.std(aucs)) if aucs else float("nan"),
        baseline_auc=roc_auc(y, base_scores),
        n_false_negative=n_fn,
        n_true_negative=n_tn,
        folds=len(aucs),
        coefficients=dict(zip(MODEL_FEATURES, map(float, coefs))),
        config=config,
    )


def _checked(features: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    if len(features) != len(table) or tuple(features.columns) != MODEL_FEATURES:
        raise InputError(f"precomputed features must be {len(table)} rows of columns {list(MODEL_FEATURES)}")
    return features.set_axis(table.index)


def predict(model: FnModel, table: pd.DataFrame, *, features: pd.DataFrame | None = None) -> np.ndarray:
    """P(false negative) per row (use it to re-rank the flagged list or to :func:`resample`); ``features``:
    :func:`model_features` of ``table`` when already computed."""
    if len(table) == 0:
        return np.zeros(0)
    x = (model_features(table, model.config) if features is None else _checked(features, table)).to_numpy()
    return model.pipeline.predict_proba(x)[:, 1]


def resample(
    table: pd.DataFrame,
    probs: np.ndarray,
    mode: str = "drop",
    threshold: float = 0.5,
    junk: np.ndarray | None = None,
) -> pd.DataFrame:
    """A cleaned copy of ``table`` for training.

    * ``mode="drop"``: rows with p ≥ ``threshold`` are removed;
    * ``mode="weight"``: every row is kept with ``weight`` = 1 − p when p ≥ ``threshold``, else 1
      (so a sure false negative weighs ~0 and ordinary negatives are untouched).

    Rows where ``junk`` is True are removed in both modes (junk is not a negative worth keeping).

    >>> t = pd.DataFrame({"negative": ["a", "b", "c"]})
    >>> resample(t, np.array([0.9, 0.2, 0.6]), "weight")["weight"].round(2).tolist()
    [0.1, 1.0, 0.4]
    >>> resample(t, np.array([0.9, 0.2, 0.6]), "drop")["negative"].tolist()
    ['b']
    """
    if mode not in RESAMPLE_MODES:
        raise InputError(f"unknown resampling mode {mode!r}; use one of {list(RESAMPLE_MODES)}")
    p = np.asarray(probs, dtype=np.float64)
    if p.shape[0] != len(table):
        raise InputError(f"{p.shape[0]} probabilities for {len(table)} triplets")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise InputError("probabilities must be finite and in [0, 1]")
    keep = np.ones(len(table), dtype=bool) if junk is None else ~np.asarray(junk, dtype=bool)
    likely_fn = p >= threshold
    if mode == "drop":
        return table.loc[keep & ~likely_fn].copy()
    out = table.loc[keep].copy()
    out["weight"] = np.where(likely_fn, 1.0 - p, 1.0)[keep]
    return out
