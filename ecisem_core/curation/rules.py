"""The flagger's settings and its margin rules: every threshold and weight (named defaults, :class:`FlagConfig`),
the relative- and absolute-margin rules, and σ of target consistency c = σ((s_qp − s_qn)/τ).

The relative-margin rule s_qn > s_qp − |s_qp|·m is the sign-independent form of NV-Retriever's TopK-PercPos
("s_qn > 0.95·s_qp" for m = 0.05); the absolute-margin rule s_qn > s_qp − δ is NV-Retriever's TopK-MarginPos (a
baseline only: :func:`~ecisem_core.curation.baselines.fn_baselines`). The junk thresholds' defaults are in
:mod:`ecisem_core.curation.junk`; what the weights do is in :mod:`ecisem_core.curation.fn_score`.

The flagger depends only on :class:`FlagConfig`, never on the ECI_sem sliders, so re-weighting never re-flags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ecisem_core.curation.junk import BOILERPLATE_QUERIES, BOILERPLATE_SHARE, JUNK_PATTERNS, MIN_TOKENS
from ecisem_core.errors import InputError

# ---------------------------------------------------------------------------------------------------------------
# Named defaults (each overridable through FlagConfig)

FN_TAU: float = 0.05
"""τ of target consistency c = σ((s_qp − s_qn)/τ) used by the flagger (same value as the metric's default τ)."""
CONSISTENCY_MAX: float = 0.5
"""Reason "encoder prefers the negative" when c < this (0.5 ⇔ s_qn > s_qp)."""
REL_MARGIN: float = 0.05
"""m of the relative-margin rule s_qn > s_qp − |s_qp|·m (m = 0.05 is NV-Retriever's TopK-PercPos at 95%)."""
ABS_MARGIN: float = 0.05
"""δ of the absolute-margin baseline rule s_qn > s_qp − δ (NV-Retriever's TopK-MarginPos)."""
DUP_COSINE: float = 0.95
"""Reason "near-duplicate of the positive" when s_pn ≥ this …"""
DUP_JACCARD: float = 0.8
"""… or when the token Jaccard |T(p) ∩ T(n)| / |T(p) ∪ T(n)| ≥ this."""
KEY_TERMS: int = 10
"""Number of key terms of a positive: its top tokens by IDF among those not in the query."""
KEY_TERMS_MIN: int = 3
"""Key-term containment is only judged when the positive has at least this many key terms."""
KEY_COVERAGE: float = 0.7
"""Reason "contains the positive's key terms" when the IDF-weighted coverage cov ≥ this."""
PN_REF: float = 0.65
"""s_pn that is neutral evidence: closer to the positive raises fn_score, farther lowers it (encoder scale)."""
W_PN: float = 2.0
"""Weight of the positive-agreement term w_pn·(s_pn − pn_ref)/τ, in units of the encoder term (s_qn − s_qp)/τ."""
W_LEX: float = 3.0
"""Log-odds added by full key-term coverage (cov = 1)."""
W_CE: float = 1.0
"""Weight of the cross-encoder log-odds ce_qn − ce_qp (columns ``ce_qp``, ``ce_qn`` when present)."""
BIAS: float = -1.0
"""Prior log-odds: at Δ = 0 with no other evidence fn_score = σ(−1) ≈ 0.27."""
FLAG_SCORE: float = 0.5
"""fn_flag also fires ("combined evidence") when fn_score ≥ this although no single rule did."""
JUNK_SCORE_FACTOR: float = 0.0
"""fn_score of junk rows (other than a copy of the positive) is multiplied by this: junk is not relevant."""


@dataclass(frozen=True)
class FlagConfig:
    """Every threshold and weight of the flagger (the named defaults of this module and of
    :mod:`ecisem_core.curation.junk` give the defaults and their meaning).

    Attributes:
        tau: τ of c = σ((s_qp − s_qn)/τ) and of the encoder term of z.
        consistency_max: "encoder prefers the negative" when c < this.
        rel_margin: m of the relative-margin rule s_qn > s_qp − |s_qp|·m.
        abs_margin: δ of the absolute-margin baseline s_qn > s_qp − δ (used by
            :func:`~ecisem_core.curation.baselines.fn_baselines`).
        dup_cosine: near-duplicate when s_pn ≥ this.
        dup_jaccard: near-duplicate when token Jaccard(p, n) ≥ this.
        key_terms: key terms per positive (top-IDF tokens not in the query).
        key_terms_min: key-term rule needs at least this many key terms.
        key_coverage: "contains the positive's key terms" when cov ≥ this.
        min_tokens: junk "very short" below this many tokens.
        boilerplate_queries, boilerplate_share: junk "boilerplate" when, within a source, one text is under ≥
            this many distinct queries and ≥ this share of the source's queries.
        junk_patterns: preamble / refusal regexes (case-insensitive).
        pn_ref, w_pn, w_lex, w_ce, bias: weights of z (:mod:`ecisem_core.curation.fn_score`).
        flag_score: "combined evidence" flag when fn_score ≥ this.
        junk_score_factor: multiplier of fn_score for junk rows.

    Example:
        >>> FlagConfig(rel_margin=0.1).rel_margin
        0.1
    """

    tau: float = FN_TAU
    consistency_max: float = CONSISTENCY_MAX
    rel_margin: float = REL_MARGIN
    abs_margin: float = ABS_MARGIN
    dup_cosine: float = DUP_COSINE
    dup_jaccard: float = DUP_JACCARD
    key_terms: int = KEY_TERMS
    key_terms_min: int = KEY_TERMS_MIN
    key_coverage: float = KEY_COVERAGE
    min_tokens: int = MIN_TOKENS
    boilerplate_queries: int = BOILERPLATE_QUERIES
    boilerplate_share: float = BOILERPLATE_SHARE
    junk_patterns: tuple[str, ...] = JUNK_PATTERNS
    pn_ref: float = PN_REF
    w_pn: float = W_PN
    w_lex: float = W_LEX
    w_ce: float = W_CE
    bias: float = BIAS
    flag_score: float = FLAG_SCORE
    junk_score_factor: float = JUNK_SCORE_FACTOR

    def __post_init__(self) -> None:
        problems = []
        if not self.tau > 0:
            problems.append(f"tau must be > 0 (got {self.tau})")
        if self.key_terms < 1:
            problems.append(f"key_terms must be >= 1 (got {self.key_terms})")
        if self.boilerplate_queries < 2:
            problems.append(f"boilerplate_queries must be >= 2 (got {self.boilerplate_queries})")
        for pattern in self.junk_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"bad junk pattern {pattern!r}: {exc}")
        if problems:
            raise InputError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---------------------------------------------------------------------------------------------------------------
# Rules


def sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1/(1 + e^−x), computed without overflow."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out


def relative_margin_rule(s_qp: np.ndarray, s_qn: np.ndarray, m: float = REL_MARGIN) -> np.ndarray:
    """s_qn > s_qp − |s_qp|·m (sign-independent form of NV-Retriever's "s_qn > 0.95·s_qp" for m = 0.05).

    >>> relative_margin_rule(np.array([0.8, 0.8, -0.2]), np.array([0.77, 0.75, -0.205])).tolist()
    [True, False, True]
    """
    s_qp = np.asarray(s_qp, dtype=np.float64)
    return np.asarray(s_qn, dtype=np.float64) > s_qp - np.abs(s_qp) * m


def absolute_margin_rule(s_qp: np.ndarray, s_qn: np.ndarray, delta: float = ABS_MARGIN) -> np.ndarray:
    """s_qn > s_qp − δ."""
    return np.asarray(s_qn, dtype=np.float64) > np.asarray(s_qp, dtype=np.float64) - delta
