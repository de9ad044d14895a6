"""False-negative (FN) score, flags and reasons per triplet (:func:`flag_triplets`), and the optional cross-encoder
evidence it can add (:func:`cross_encoder_scores`).

A mined or generated "negative" can be a relevant passage (a *false negative*: training pushes the query away from
an answer) or junk (empty text, an LLM preamble, a refusal, one line repeated under many queries). This module
gives every triplet

* ``fn_score`` ∈ [0, 1] — how likely the negative is *relevant* (for ranking a review list),
* ``fn_flag`` — at least one false-negative reason fired (or the combined evidence reached ``flag_score``),
* ``junk_flag`` — degenerate text (its own flag: junk is not a false negative),
* ``fn_reasons`` — every reason that fired, human-readable, ``"; "``-joined, ``""`` when none; junk reasons
  start with ``"junk: "`` (the reasons, their codes and texts: :mod:`ecisem_core.curation.reasons`).

The score (all terms vectorised over rows; ``Δ = s_qp − s_qn``)::

    z = bias                                                   # prior log-odds
      + (s_qn − s_qp) / τ                                      # encoder's log-odds that n beats p = logit(1 − c)
      + w_pn · (s_pn − pn_ref) / τ                             # the negative says what the positive says
      + w_lex · cov · [n_key ≥ key_terms_min]                  # it contains the positive's key answer terms
      + w_ce  · (ce_qn − ce_qp)                                # optional cross-encoder log-odds (logits)
    fn_score = σ(z)                  for ordinary rows
    fn_score = 1                     when the negative is the positive's text (a certain false negative)
    fn_score = junk_score_factor·σ(z) for other junk rows (default 0: junk is not relevant, it is junk)

Why these terms: a hard-but-true negative and a false negative both sit close to the query (Δ small), so the
encoder's preference alone cannot separate them (nor can rank-by-s_qn). What separates them is the *positive*: a
false negative answers the same need, so it is close to the labeled positive (s_pn high) and often repeats its
answer-bearing words, while a hard negative only shares the topic. On the bundled demo's planted false negatives
(MiniLM embeddings) ROC AUC is 0.95 for fn_score against 0.92 for s_qn and 0.89 for −Δ, and 0.89 against 0.80
for s_qn among the hardest 40% of negatives. ``pn_ref`` (the s_pn that is neutral evidence) is on the scale of
the encoder's cosines (0.65 suits MiniLM-class encoders); the learned scorer (:mod:`ecisem_core.curation.fn_model`)
re-fits all weights from verdicts. The key-term and cross-encoder terms are one-sided (their absence is no
evidence against relevance). ``cov`` (key-term coverage) is defined in :mod:`ecisem_core.curation.features`.

It depends only on :class:`~ecisem_core.curation.rules.FlagConfig`, never on the ECI_sem sliders, so re-weighting
never re-flags.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.confine import checked_tree
from ecisem_core.curation.features import check_columns, triplet_features
from ecisem_core.embed.fingerprint import check_model_spec
from ecisem_core.errors import InputError
from ecisem_core.metric.tokens import TokenMatrix
from ecisem_core.curation.reasons import REASONS, join_reasons, render_reason
from ecisem_core.curation.rules import FlagConfig, relative_margin_rule, sigmoid


def fn_logit(feats: pd.DataFrame, config: FlagConfig = FlagConfig(), ce_gap: np.ndarray | None = None) -> np.ndarray:
    """z of the module docstring from :func:`~ecisem_core.curation.features.triplet_features` (``ce_gap`` =
    ce_qn − ce_qp when available)."""
    key_ok = feats["n_key_terms"].to_numpy() >= config.key_terms_min
    z = (
        config.bias
        - feats["delta"].to_numpy() / config.tau
        + config.w_pn * (feats["s_pn"].to_numpy() - config.pn_ref) / config.tau
        + config.w_lex * feats["key_coverage"].to_numpy() * key_ok
    )
    if ce_gap is not None:
        z = z + config.w_ce * np.asarray(ce_gap, dtype=np.float64)
    return z


def flag_triplets(
    table: pd.DataFrame, config: FlagConfig = FlagConfig(), tokens: TokenMatrix | None = None
) -> pd.DataFrame:
    """FN score, flags and reasons per triplet.

    Args:
        table: columns query, positive, negative, source, query_id, s_qp, s_qn, s_pn (cosine similarities of
            L2-normalised embeddings); optional ``ce_qp``, ``ce_qn`` (cross-encoder logits, see
            :func:`cross_encoder_scores`) add cross-encoder evidence.
        config: thresholds and weights.
        tokens: the table's word-token matrix (rows ``qi``, ``pi``, ``ni`` = the table's rows, in order) when
            already built, e.g. shared with ρ by :func:`ecisem_core.score.prepare`; built here otherwise.

    Returns:
        DataFrame on ``table.index``: ``fn_score`` (float in [0, 1], formula in the module docstring),
        ``fn_flag`` (bool: a false-negative reason fired or fn_score ≥ flag_score), ``junk_flag`` (bool: degenerate
        text), ``fn_reasons`` (str, ``"; "``-joined, junk reasons prefixed ``"junk: "``, ``""`` when none; the
        texts of :data:`ecisem_core.curation.reasons.REASONS`, whose codes
        :func:`~ecisem_core.curation.reasons.reason_codes` gives back).

    Example:
        >>> t = pd.DataFrame({"query": ["capital of france"], "positive": ["Paris is the capital of France."],
        ...     "negative": ["Paris is the capital of France."], "source": ["s"], "query_id": ["q1"],
        ...     "s_qp": [0.8], "s_qn": [0.8], "s_pn": [1.0]})
        >>> r = flag_triplets(t).iloc[0]
        >>> float(r.fn_score), bool(r.fn_flag), bool(r.junk_flag), r.fn_reasons
        (1.0, True, True, 'identical to the positive; junk: copy of the positive')
    """
    feats = triplet_features(table, config, tokens)
    n = len(table)
    s_qp, s_qn, s_pn = (feats[c].to_numpy() for c in ("s_qp", "s_qn", "s_pn"))
    c = feats["c"].to_numpy()
    has_ce = "ce_qp" in table.columns and "ce_qn" in table.columns
    ce_gap = None
    if has_ce:
        ce_qp = table["ce_qp"].to_numpy(dtype=np.float64)
        ce_qn = table["ce_qn"].to_numpy(dtype=np.float64)
        ce_gap = np.where(np.isfinite(ce_qp) & np.isfinite(ce_qn), ce_qn - ce_qp, 0.0)

    # false-negative evidence
    prefers = c < config.consistency_max
    rel = relative_margin_rule(s_qp, s_qn, config.rel_margin)
    jac = feats["jaccard"].to_numpy()
    dup = (s_pn >= config.dup_cosine) | (jac >= config.dup_jaccard)
    cov = feats["key_coverage"].to_numpy()
    n_key = feats["n_key_terms"].to_numpy()
    lex = (n_key >= config.key_terms_min) & (cov >= config.key_coverage)
    identical = feats["identical"].to_numpy(dtype=bool)
    ce_pref = (ce_gap > 0) if ce_gap is not None else np.zeros(n, dtype=bool)

    # junk evidence
    n_tok = feats["n_tokens"].to_numpy()
    empty = n_tok == 0
    short = (n_tok > 0) & (n_tok < config.min_tokens)
    boiler_count = feats["boilerplate_count"].to_numpy()
    boiler = (boiler_count >= config.boilerplate_queries) & (
        feats["boilerplate_share"].to_numpy() >= config.boilerplate_share
    )
    pattern = feats["pattern_hit"].to_numpy(dtype=bool)
    junk = empty | short | boiler | pattern | identical

    z = fn_logit(feats, config, ce_gap)
    score = sigmoid(z)
    score = np.where(junk & ~identical, score * config.junk_score_factor, score)
    score = np.where(identical, 1.0, score)
    score = np.clip(score, 0.0, 1.0)

    rule_fired = (prefers | rel | dup | lex | ce_pref | identical) & ~(junk & ~identical)
    combined = (score >= config.flag_score) & ~rule_fired & ~(junk & ~identical)
    fn_flag = rule_fired | combined

    ok = ~junk  # no further reasons for junk (not relevant) or for a copy of the positive (reason enough)
    fired = {  # reason code → rows where it is given
        "identical": identical,
        "encoder_prefers": prefers & ok,
        "relative_margin": rel & ok,
        "near_duplicate": dup & ok & ~identical,
        "key_terms": lex & ok & ~identical,
        "cross_encoder": ce_pref & ok,
        "combined": combined,
        "junk_empty": empty,
        "junk_short": short,
        "junk_boilerplate": boiler,
        "junk_pattern": pattern,
        "junk_copy": identical,
    }
    values = {  # the numbers the reasons' templates show
        "c": c, "s_qp": s_qp, "s_qn": s_qn, "s_pn": s_pn, "rel_margin": config.rel_margin,
        "rel_threshold": s_qp - np.abs(s_qp) * config.rel_margin, "jaccard": jac, "coverage_pct": 100 * cov,
        "n_key_terms": n_key, "ce_gap": ce_gap if ce_gap is not None else np.zeros(n), "fn_score": score,
        "n_tokens": n_tok, "boilerplate_count": boiler_count,
    }
    reasons = join_reasons([render_reason(r.code, fired[r.code], values) for r in REASONS], n)
    return pd.DataFrame(
        {
            "fn_score": score.astype(np.float64),
            "fn_flag": fn_flag.astype(bool),
            "junk_flag": junk.astype(bool),
            # the object array of str as is: ``astype(str)`` made a fixed-width copy (4 bytes × longest × rows)
            "fn_reasons": reasons if n else np.array([], dtype=str),
        },
        index=table.index,
    )


def cross_encoder_scores(
    table: pd.DataFrame, model_name_or_path: str, batch_size: int = 32, local_files_only: bool = True
) -> np.ndarray:
    """Cross-encoder logits of (query, positive) and (query, negative): array of shape (n, 2) = [ce_qp, ce_qn].

    Unique pairs are scored once. Raw logits (identity activation), so ``ce_qn − ce_qp`` is the cross-encoder's
    log-odds that the negative beats the positive; pass them to :func:`flag_triplets` as columns ``ce_qp`` and
    ``ce_qn``. ``local_files_only=True`` (default): nothing is downloaded at run time.
    """
    # heavy optional dependencies: imported only when a cross-encoder is asked for
    import torch
    from sentence_transformers import CrossEncoder

    check_columns(table, ("query", "positive", "negative"))
    check_model_spec(str(model_name_or_path), "--cross-encoder")
    if Path(str(model_name_or_path)).exists():
        checked_tree(model_name_or_path)  # inside a confinement, the folder and its files stay in the root
    try:
        model = CrossEncoder(model_name_or_path, local_files_only=local_files_only)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise InputError(f"cannot load the cross-encoder offline ({type(exc).__name__}: {exc})",
                         model_name_or_path) from None
    n = len(table)
    q = table["query"].astype(str).tolist()
    pairs = list(zip(q + q, table["positive"].astype(str).tolist() + table["negative"].astype(str).tolist()))
    codes, uniques = pd.factorize(pd.Series([a + "\x00" + b for a, b in pairs]))
    unique_pairs = [tuple(u.split("\x00", 1)) for u in uniques]
    if not unique_pairs:
        return np.zeros((0, 2))
    scores = model.predict(
        unique_pairs, batch_size=batch_size, activation_fn=torch.nn.Identity(), convert_to_numpy=True,
        show_progress_bar=False,
    )
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 2:  # multi-label heads: use the last ("relevant") logit
        scores = scores[:, -1]
    full = scores[codes]
    return np.column_stack([full[:n], full[n:]])
