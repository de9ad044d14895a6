"""False-negative score, flags and reasons per triplet; baselines and AUC — the former single module, kept so that
``from ecisem_core.curation.negatives import …`` goes on working. It only re-exports; the code lives in:

* :mod:`ecisem_core.curation.rules` — every threshold and weight (:class:`FlagConfig`), the margin rules, σ;
* :mod:`ecisem_core.curation.junk` — junk patterns and text normalisation;
* :mod:`ecisem_core.curation.features` — lexical and triplet features (key-term coverage, Jaccard, …);
* :mod:`ecisem_core.curation.reasons` — the reasons: codes, labels and text templates;
* :mod:`ecisem_core.curation.fn_score` — fn_score, flags and ``fn_reasons`` (:func:`flag_triplets`; the formula),
  cross-encoder evidence;
* :mod:`ecisem_core.curation.baselines` — ROC AUC, precision@k, fn_score against the baselines.
"""
from __future__ import annotations

from ecisem_core.curation.baselines import average_ranks, fn_baselines, precision_at_k, roc_auc
from ecisem_core.curation.features import (
    FEATURE_COLUMNS,
    REQUIRED_COLUMNS,
    lexical_features,
    term_matrix,
    triplet_features,
)
from ecisem_core.curation.fn_score import cross_encoder_scores, flag_triplets, fn_logit
from ecisem_core.curation.junk import (
    BOILERPLATE_QUERIES,
    BOILERPLATE_SHARE,
    JUNK_PATTERNS,
    MIN_TOKENS,
    PATTERN_SCAN_CHARS,
    junk_pattern_mask,
    normalise_text,
)
from ecisem_core.curation.reasons import JUNK_PREFIX, SEP
from ecisem_core.curation.rules import (
    ABS_MARGIN,
    BIAS,
    CONSISTENCY_MAX,
    DUP_COSINE,
    DUP_JACCARD,
    FLAG_SCORE,
    FN_TAU,
    JUNK_SCORE_FACTOR,
    KEY_COVERAGE,
    KEY_TERMS,
    KEY_TERMS_MIN,
    PN_REF,
    REL_MARGIN,
    W_CE,
    W_LEX,
    W_PN,
    FlagConfig,
    absolute_margin_rule,
    relative_margin_rule,
    sigmoid,
)

__all__ = [
    "ABS_MARGIN", "BIAS", "BOILERPLATE_QUERIES", "BOILERPLATE_SHARE", "CONSISTENCY_MAX", "DUP_COSINE", "DUP_JACCARD",
    "FEATURE_COLUMNS", "FLAG_SCORE", "FN_TAU", "JUNK_PATTERNS", "JUNK_PREFIX", "JUNK_SCORE_FACTOR", "KEY_COVERAGE",
    "KEY_TERMS", "KEY_TERMS_MIN", "MIN_TOKENS", "PATTERN_SCAN_CHARS", "PN_REF", "REL_MARGIN", "REQUIRED_COLUMNS",
    "SEP", "W_CE", "W_LEX", "W_PN", "FlagConfig", "absolute_margin_rule", "average_ranks", "cross_encoder_scores",
    "flag_triplets", "fn_baselines", "fn_logit", "junk_pattern_mask", "lexical_features", "normalise_text",
    "precision_at_k", "relative_margin_rule", "roc_auc", "sigmoid", "term_matrix", "triplet_features",
]
