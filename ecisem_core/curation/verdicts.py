"""What verdicts say, apart from where they are stored: the verdict vocabulary and the checks of a verdict row,
each item's consensus, inter-annotator agreement (Cohen's κ) and the flagger's precision.

Pure functions of verdict tables — the current verdicts of a batch as
:meth:`ecisem_core.curation.annotations.AnnotationStore.verdicts` returns them (one row per item and annotator).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError

VERDICTS: tuple[str, ...] = ("false_negative", "true_negative", "unsure")
"""Allowed verdicts, in the order the annotate page shows them."""
VERDICT_ALIASES: dict[str, str] = {
    "fn": "false_negative",
    "false negative": "false_negative",
    "false-negative": "false_negative",
    "tn": "true_negative",
    "true negative": "true_negative",
    "true-negative": "true_negative",
    "?": "unsure",
}
"""Spellings accepted on input (case-insensitive) and their canonical verdict."""
VERDICT_WORDS: dict[str, str] = {"false_negative": "false negative", "true_negative": "true negative",
                                 "unsure": "unsure"}
"""How a verdict is shown."""


def cell_text(value: Any) -> str:
    """A verdict row's cell as text: ``""`` for None / NaN."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def line_number(value: Any) -> int | None:
    """A row's ``line`` (its line in the file it was read from) as an int; ``None`` when absent or not a number."""
    try:
        return None if value is None or pd.isna(value) else int(value)
    except (TypeError, ValueError):
        return None


def check_annotator(annotator: Any) -> str:
    """The annotator's name, stripped; ``InputError`` when empty."""
    name = cell_text(annotator).strip()
    if not name:
        raise InputError("annotator name is empty")
    return name


def normalise_verdict(value: Any) -> str:
    """Canonical verdict of an input spelling, or ``InputError``.

    >>> normalise_verdict(" FN "), normalise_verdict("True negative"), normalise_verdict("unsure")
    ('false_negative', 'true_negative', 'unsure')
    """
    text = str(value).strip().lower() if value is not None else ""
    text = VERDICT_ALIASES.get(text, text.replace(" ", "_").replace("-", "_"))
    if text not in VERDICTS:
        raise InputError(f"unknown verdict {value!r}; use one of {list(VERDICTS)} (or fn / tn)")
    return text


@dataclass(frozen=True)
class FlaggerPrecision:
    """Share of *flagged* items judged false negative among flagged items with a decided consensus.

    An item's consensus: majority of its annotators' current non-"unsure" verdicts (a tie is undecided).
    ``precision`` is NaN when no flagged item is decided.
    """

    precision: float
    n_judged: int
    n_false_negative: int
    n_undecided: int


def cohen_kappa(a: np.ndarray, b: np.ndarray, categories: tuple[str, ...] = VERDICTS) -> float:
    """Cohen's κ = (p_o − p_e)/(1 − p_e), p_o observed agreement, p_e = Σ_k p_a(k)·p_b(k).

    NaN with no items, or when p_e = 1 (both raters used one and the same category throughout: κ undefined).

    >>> cohen_kappa(np.array(["x", "x", "y", "y"]), np.array(["x", "y", "y", "y"]), ("x", "y"))
    0.5
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.size == 0:
        return float("nan")
    idx = {c: i for i, c in enumerate(categories)}
    ia = np.array([idx[x] for x in a])
    ib = np.array([idx[x] for x in b])
    p_o = float(np.mean(ia == ib))
    k = len(categories)
    pa = np.bincount(ia, minlength=k) / a.size
    pb = np.bincount(ib, minlength=k) / b.size
    p_e = float(pa @ pb)
    if p_e >= 1.0 - 1e-12:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def item_consensus(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per item: counts of current verdicts and the consensus label.

    ``label`` = 1.0 when false-negative verdicts outnumber true-negative ones, 0.0 when fewer, NaN on a tie or
    when only "unsure" answers exist. Input: rows of :meth:`AnnotationStore.verdicts` (current verdicts).
    """
    cols = ["item_id", "n_false_negative", "n_true_negative", "n_unsure", "label"]
    if verdicts.empty:
        return pd.DataFrame(columns=cols)
    counts = pd.crosstab(verdicts["item_id"], verdicts["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    fn = counts["false_negative"].to_numpy()
    tn = counts["true_negative"].to_numpy()
    label = np.where(fn > tn, 1.0, np.where(tn > fn, 0.0, np.nan))
    return pd.DataFrame(
        {
            "item_id": counts.index.to_numpy(),
            "n_false_negative": fn,
            "n_true_negative": tn,
            "n_unsure": counts["unsure"].to_numpy(),
            "label": label,
        }
    )


def agreement_table(current: pd.DataFrame) -> pd.DataFrame:
    """Cohen's κ for every pair of annotators over the items both answered (current verdicts; the three verdicts
    are the categories). Columns: annotator_a, annotator_b, n_items, observed, kappa."""
    cols = ["annotator_a", "annotator_b", "n_items", "observed", "kappa"]
    if current.empty:
        return pd.DataFrame(columns=cols)
    wide = current.pivot(index="item_id", columns="annotator", values="verdict")
    rows = []
    for a, b in combinations(sorted(wide.columns), 2):
        both = wide[[a, b]].dropna()
        va, vb = both[a].to_numpy(), both[b].to_numpy()
        rows.append(
            {
                "annotator_a": a,
                "annotator_b": b,
                "n_items": int(len(both)),
                "observed": float(np.mean(va == vb)) if len(both) else float("nan"),
                "kappa": cohen_kappa(va, vb),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def flagger_precision_of(current: pd.DataFrame) -> FlaggerPrecision:
    """Precision of the flagger on judged items (see :class:`FlaggerPrecision`); items without ``fn_flag`` (None)
    count as flagged (a batch is normally built from the flagged list)."""
    if current.empty:
        return FlaggerPrecision(float("nan"), 0, 0, 0)
    flagged_items = current.loc[current["fn_flag"].map(lambda v: v is None or bool(v)), "item_id"].unique()
    cons = item_consensus(current[current["item_id"].isin(flagged_items)])
    decided = cons["label"].notna()
    n_judged = int(decided.sum())
    n_fn = int((cons["label"] == 1.0).sum())
    precision = n_fn / n_judged if n_judged else float("nan")
    return FlaggerPrecision(precision, n_judged, n_fn, int((~decided).sum()))
