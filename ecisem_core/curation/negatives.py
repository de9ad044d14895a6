"""False-negative (FN) score, flags and human-readable reasons per triplet; baselines and AUC.

A mined or generated "negative" can be a relevant passage (a *false negative*: training pushes the query away from
an answer) or junk (empty text, an LLM preamble, a refusal, one line repeated under many queries). This module
gives every triplet

* ``fn_score`` ∈ [0, 1] — how likely the negative is *relevant* (for ranking a review list),
* ``fn_flag`` — at least one false-negative reason fired (or the combined evidence reached ``flag_score``),
* ``junk_flag`` — degenerate text (its own flag: junk is not a false negative),
* ``fn_reasons`` — every reason that fired, human-readable, ``"; "``-joined, ``""`` when none; junk reasons
  start with ``"junk: "``.

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
evidence against relevance).

``cov`` (key-term coverage): the positive's *key terms* are its tokens that are not in the query, the top
``key_terms`` by IDF (the answer-bearing words: the query's own words are in every hard negative by construction);
``cov = Σ_{t ∈ K ∩ T(n)} idf(t) / Σ_{t ∈ K} idf(t)``. IDF: smoothed BM25 idf over the unique passages
(positives ∪ negatives) of the table, word tokenizer (:mod:`ecisem_core.metric.lexical`).

It depends only on :class:`FlagConfig`, never on the ECI_sem sliders, so re-weighting never re-flags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ecisem_core.errors import InputError
from ecisem_core.metric.lexical import idf_vector
from ecisem_core.metric.lexical import word_term_matrix as term_matrix

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
MIN_TOKENS: int = 4
"""Junk "very short" when the negative has fewer word tokens than this (0 tokens: "empty")."""
BOILERPLATE_QUERIES: int = 5
"""Junk "boilerplate" when, within one source, the same (normalised) negative text appears under ≥ this many
distinct queries …"""
BOILERPLATE_SHARE: float = 0.1
"""… and under ≥ this share of the source's distinct queries (a mined passage legitimately recurs under a few
queries of a large source; a generated template recurs under a large share of them)."""
JUNK_PATTERNS: tuple[str, ...] = (
    r"^\W*here (?:are|is) (?:\w+ ){0,6}?(?:hard[ -]?)?negatives?\b",
    r"^\W*here (?:are|is) [^:]{0,100}:$",
    r"^\W*(?:sure|certainly|of course|absolutely)\b[ ,!.]*(?:here|i\b|below)",
    r"^\W*(?:i'm sorry|i am sorry|sorry,|unfortunately,? i\b)",
    r"^\W*i (?:cannot|can't|can not|won't|will not|am unable|'m unable|am not able)\b",
    r"^\W*as an? (?:ai|(?:large )?language model)\b",
    r"is there (?:something|anything) else i can help",
)
"""Regexes of LLM preambles and refusals, searched (case-insensitive) in the *normalised* negative (lower-cased,
whitespace collapsed to single spaces, first :data:`PATTERN_SCAN_CHARS` characters): "Here are three HARD NEGATIVE
passages…", a "Here is …:" line with nothing after it, "Sure, here…", "I'm sorry…", "I cannot…", "As an AI…",
"…Is there something else I can help you with?". All but the last are anchored at the start (so a passage that
merely mentions "an AI" is not junk) and start with a literal where possible (fast)."""
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

REQUIRED_COLUMNS: tuple[str, ...] = ("query", "positive", "negative", "source", "query_id", "s_qp", "s_qn", "s_pn")
"""Columns :func:`flag_triplets` needs."""
PATTERN_SCAN_CHARS: int = 400
"""Preamble/refusal patterns are searched in the first this-many characters of a negative."""
JUNK_PREFIX: str = "junk: "
"""Prefix of junk reasons in ``fn_reasons``."""
SEP: str = "; "
"""Separator of reasons in ``fn_reasons``."""


@dataclass(frozen=True)
class FlagConfig:
    """Every threshold and weight of the flagger (module constants above give the defaults and their meaning).

    Attributes:
        tau: τ of c = σ((s_qp − s_qn)/τ) and of the encoder term of z.
        consistency_max: "encoder prefers the negative" when c < this.
        rel_margin: m of the relative-margin rule s_qn > s_qp − |s_qp|·m.
        abs_margin: δ of the absolute-margin baseline s_qn > s_qp − δ (used by :func:`fn_baselines`).
        dup_cosine: near-duplicate when s_pn ≥ this.
        dup_jaccard: near-duplicate when token Jaccard(p, n) ≥ this.
        key_terms: key terms per positive (top-IDF tokens not in the query).
        key_terms_min: key-term rule needs at least this many key terms.
        key_coverage: "contains the positive's key terms" when cov ≥ this.
        min_tokens: junk "very short" below this many tokens.
        boilerplate_queries, boilerplate_share: junk "boilerplate" when, within a source, one text is under ≥
            this many distinct queries and ≥ this share of the source's queries.
        junk_patterns: preamble / refusal regexes (case-insensitive).
        pn_ref, w_pn, w_lex, w_ce, bias: weights of z (module docstring).
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
# Small pure helpers


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


def normalise_text(texts: pd.Series) -> np.ndarray:
    """Lower-case, whitespace collapsed, stripped (computed once per unique text): the key for "same text"
    (boilerplate, identical to the positive).

    >>> normalise_text(pd.Series(["  Same\tTEXT ", "same text"])).tolist()
    ['same text', 'same text']
    """
    codes, uniques = pd.factorize(texts.astype(str))
    norm = np.array([" ".join(t.lower().split()) for t in uniques], dtype=object)
    return norm[codes] if len(codes) else np.array([], dtype=object)


def junk_pattern_mask(normalised: np.ndarray, patterns: tuple[str, ...] = JUNK_PATTERNS) -> np.ndarray:
    """True where a normalised text (:func:`normalise_text`) matches any preamble/refusal pattern; each unique text
    is searched once, in its first :data:`PATTERN_SCAN_CHARS` characters.

    >>> junk_pattern_mask(normalise_text(pd.Series(["Here are three HARD NEGATIVE passages:", "As an AI, I can't",
    ...     "Paris is the capital.", "The lab built an AI model."]))).tolist()
    [True, True, False, False]
    """
    normalised = np.asarray(normalised, dtype=object)
    if not patterns or normalised.size == 0:
        return np.zeros(normalised.size, dtype=bool)
    codes, uniques = pd.factorize(normalised)
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    hit = np.array(
        [any(p.search(t[:PATTERN_SCAN_CHARS]) for p in compiled) for t in uniques], dtype=bool
    )
    return hit[codes]


def _row_top_k(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest stored values of each row of a CSR matrix of non-negative values."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    span = float(m.data.max()) + 1.0 if m.data.size else 1.0
    order = np.argsort(rows * span - m.data, kind="stable")  # by row, then value descending
    rank = np.arange(order.size) - m.indptr[rows[order]]
    keep = order[rank < k]
    indptr = np.r_[0, np.cumsum(np.minimum(counts, k))].astype(np.int64)
    out = sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)
    out.sort_indices()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Features


FEATURE_COLUMNS: tuple[str, ...] = (
    "s_qp", "s_qn", "s_pn", "delta", "c", "rel_gap", "jaccard", "key_coverage", "n_key_terms",
    "n_tokens", "len_ratio", "boilerplate_count", "boilerplate_share", "pattern_hit", "identical",
)
"""Columns of :func:`triplet_features` (also the learned scorer's candidate inputs)."""


def _check_columns(table: pd.DataFrame, needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"triplet table lacks column(s) {missing}; it needs {list(needed)}")


def lexical_features(table: pd.DataFrame, config: FlagConfig = FlagConfig()) -> pd.DataFrame:
    """Token features per triplet, vectorised on sparse unique-text matrices.

    Returns (same index): ``jaccard`` = |T(p) ∩ T(n)| / |T(p) ∪ T(n)| (0 when both empty), ``key_coverage`` = cov
    (module docstring), ``n_key_terms`` = |K| (≤ ``key_terms``), ``n_tokens`` = |T(n)|, ``len_ratio`` =
    |T(n)| / max(1, |T(p)|).
    """
    n = len(table)
    all_texts = pd.concat([table["query"], table["positive"], table["negative"]], ignore_index=True).astype(str)
    codes, uniques = pd.factorize(all_texts)
    qi, pi, ni = codes[:n], codes[n : 2 * n], codes[2 * n :]
    x, vocab = term_matrix(list(uniques))
    doc_rows = np.unique(np.concatenate([pi, ni]))
    idf = idf_vector(x[doc_rows], vocab) if n else np.zeros(vocab)
    sizes = np.diff(x.indptr).astype(np.float64)

    xp, xn = x[pi], x[ni]
    inter = np.asarray(xp.multiply(xn).sum(axis=1)).ravel()
    union = sizes[pi] + sizes[ni] - inter
    jaccard = np.divide(inter, union, out=np.zeros(n), where=union > 0)

    # key terms per unique (query, positive) pair: positive tokens not in the query, top-k by idf
    pair_codes, pair_uniques = pd.factorize(pd.Series(qi.astype(np.int64) * (len(uniques) + 1) + pi))
    pair_q = pair_uniques.to_numpy() // (len(uniques) + 1)
    pair_p = pair_uniques.to_numpy() % (len(uniques) + 1)
    kp = x[pair_p]
    key = (kp - kp.multiply(x[pair_q])).tocsr()
    key.eliminate_zeros()
    key.data = idf[key.indices]
    key = _row_top_k(key, config.key_terms)
    key_mass = np.asarray(key.sum(axis=1)).ravel()
    n_key = np.diff(key.indptr)
    covered = np.asarray(key[pair_codes].multiply(xn).sum(axis=1)).ravel()
    total = key_mass[pair_codes]
    coverage = np.divide(covered, total, out=np.zeros(n), where=total > 0)

    return pd.DataFrame(
        {
            "jaccard": jaccard,
            "key_coverage": np.clip(coverage, 0.0, 1.0),
            "n_key_terms": n_key[pair_codes].astype(np.int64),
            "n_tokens": sizes[ni].astype(np.int64),
            "len_ratio": sizes[ni] / np.maximum(1.0, sizes[pi]),
        },
        index=table.index,
    )


def triplet_features(table: pd.DataFrame, config: FlagConfig = FlagConfig()) -> pd.DataFrame:
    """Every piece of evidence per triplet (columns :data:`FEATURE_COLUMNS`, same index).

    ``delta`` = s_qp − s_qn, ``c`` = σ(Δ/τ), ``rel_gap`` = (s_qn − s_qp)/max(|s_qp|, 1e-9) (the relative-margin
    rule is rel_gap > −m), ``boilerplate_count`` = distinct queries of the same source sharing this negative
    text, ``boilerplate_share`` = that count over the source's distinct queries, ``pattern_hit`` = preamble/refusal regex match, ``identical`` = normalised n == normalised p, plus
    :func:`lexical_features`.
    """
    _check_columns(table, REQUIRED_COLUMNS)
    s_qp = table["s_qp"].to_numpy(dtype=np.float64)
    s_qn = table["s_qn"].to_numpy(dtype=np.float64)
    s_pn = table["s_pn"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(s_qp) & np.isfinite(s_qn) & np.isfinite(s_pn))
    if bad.any():
        raise InputError(f"{int(bad.sum())} row(s) have non-finite similarities (first index {table.index[bad][0]!r})")
    delta = s_qp - s_qn
    norm_n = normalise_text(table["negative"])
    norm_p = normalise_text(table["positive"])
    keyed = pd.DataFrame(
        {"s": table["source"].astype(str).to_numpy(), "n": norm_n, "q": table["query_id"].astype(str).to_numpy()}
    )
    boiler = keyed.groupby(["s", "n"])["q"].transform("nunique").to_numpy(dtype=np.int64)
    source_queries = keyed.groupby("s")["q"].transform("nunique").to_numpy(dtype=np.float64)
    feats = pd.DataFrame(
        {
            "s_qp": s_qp,
            "s_qn": s_qn,
            "s_pn": s_pn,
            "delta": delta,
            "c": sigmoid(delta / config.tau),
            "rel_gap": -delta / np.maximum(np.abs(s_qp), 1e-9),
            "boilerplate_count": boiler,
            "boilerplate_share": boiler / np.maximum(source_queries, 1.0),
            "pattern_hit": junk_pattern_mask(norm_n, config.junk_patterns),
            "identical": norm_n == norm_p,
        },
        index=table.index,
    )
    lex = lexical_features(table, config)
    feats = pd.concat([feats, lex], axis=1)
    return feats[list(FEATURE_COLUMNS)]


# ---------------------------------------------------------------------------------------------------------------
# Flags


def _fmt(values: np.ndarray, spec: str = ".2f") -> np.ndarray:
    return np.array([format(float(v), spec) for v in values], dtype=object)


def _reason(mask: np.ndarray, text: Callable[[np.ndarray], np.ndarray] | str) -> np.ndarray:
    """Reason text where ``mask``; ``text`` is a constant or a function of the masked row positions (so numbers
    are formatted only for the rows that need them)."""
    out = np.full(mask.shape[0], "", dtype=object)
    idx = np.flatnonzero(mask)
    if idx.size:
        out[idx] = text if isinstance(text, str) else text(idx)
    return out


def _join(parts: list[np.ndarray], n: int) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    for part in parts:
        has_out = out != ""
        has_part = part != ""
        both = has_out & has_part
        out[both] = out[both] + SEP + part[both]
        only = ~has_out & has_part
        out[only] = part[only]
    return out


def fn_logit(feats: pd.DataFrame, config: FlagConfig = FlagConfig(), ce_gap: np.ndarray | None = None) -> np.ndarray:
    """z of the module docstring from :func:`triplet_features` (``ce_gap`` = ce_qn − ce_qp when available)."""
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


def flag_triplets(table: pd.DataFrame, config: FlagConfig = FlagConfig()) -> pd.DataFrame:
    """FN score, flags and reasons per triplet.

    Args:
        table: columns query, positive, negative, source, query_id, s_qp, s_qn, s_pn (cosine similarities of
            L2-normalised embeddings); optional ``ce_qp``, ``ce_qn`` (cross-encoder logits, see
            :func:`cross_encoder_scores`) add cross-encoder evidence.
        config: thresholds and weights.

    Returns:
        DataFrame on ``table.index``: ``fn_score`` (float in [0, 1], formula in the module docstring),
        ``fn_flag`` (bool: a false-negative reason fired or fn_score ≥ flag_score), ``junk_flag`` (bool: degenerate
        text), ``fn_reasons`` (str, ``"; "``-joined, junk reasons prefixed ``"junk: "``, ``""`` when none).

    Example:
        >>> t = pd.DataFrame({"query": ["capital of france"], "positive": ["Paris is the capital of France."],
        ...     "negative": ["Paris is the capital of France."], "source": ["s"], "query_id": ["q1"],
        ...     "s_qp": [0.8], "s_qn": [0.8], "s_pn": [1.0]})
        >>> r = flag_triplets(t).iloc[0]
        >>> float(r.fn_score), bool(r.fn_flag), bool(r.junk_flag), r.fn_reasons
        (1.0, True, True, 'identical to the positive; junk: copy of the positive')
    """
    feats = triplet_features(table, config)
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
    thr = s_qp - np.abs(s_qp) * config.rel_margin
    gap = ce_gap if ce_gap is not None else np.zeros(n)
    parts = [
        _reason(identical, "identical to the positive"),
        _reason(prefers & ok, lambda i: "encoder prefers the negative (c = " + _fmt(c[i])
                + ": s_qn " + _fmt(s_qn[i]) + " > s_qp " + _fmt(s_qp[i]) + ")"),
        _reason(rel & ok, lambda i: "relative-margin rule (s_qn " + _fmt(s_qn[i]) + " > s_qp − "
                + format(config.rel_margin, "g") + "·|s_qp| = " + _fmt(thr[i]) + ")"),
        _reason(dup & ok & ~identical, lambda i: "near-duplicate of the positive (s_pn " + _fmt(s_pn[i])
                + ", token Jaccard " + _fmt(jac[i]) + ")"),
        _reason(lex & ok & ~identical, lambda i: "contains the positive's key terms (" + _fmt(100 * cov[i], ".0f")
                + "% of the IDF mass of its " + _fmt(n_key[i], ".0f") + " key terms)"),
        _reason(ce_pref & ok, lambda i: "cross-encoder prefers the negative (logit gap " + _fmt(gap[i], "+.2f") + ")"),
        _reason(combined, lambda i: "combined evidence (fn_score " + _fmt(score[i]) + "; s_pn " + _fmt(s_pn[i])
                + ")"),
        _reason(empty, JUNK_PREFIX + "empty text"),
        _reason(short, lambda i: JUNK_PREFIX + "very short (" + _fmt(n_tok[i], ".0f") + " words)"),
        _reason(boiler, lambda i: JUNK_PREFIX + "boilerplate (same text under " + _fmt(boiler_count[i], ".0f")
                + " queries)"),
        _reason(pattern, JUNK_PREFIX + "LLM preamble or refusal"),
        _reason(identical, JUNK_PREFIX + "copy of the positive"),
    ]
    reasons = _join(parts, n)
    return pd.DataFrame(
        {
            "fn_score": score.astype(np.float64),
            "fn_flag": fn_flag.astype(bool),
            "junk_flag": junk.astype(bool),
            "fn_reasons": reasons.astype(str) if n else np.array([], dtype=str),
        },
        index=table.index,
    )


# ---------------------------------------------------------------------------------------------------------------
# Optional cross-encoder evidence


def cross_encoder_scores(
    table: pd.DataFrame, model_name_or_path: str, batch_size: int = 32, local_files_only: bool = True
) -> np.ndarray:
    """Cross-encoder logits of (query, positive) and (query, negative): array of shape (n, 2) = [ce_qp, ce_qn].

    Unique pairs are scored once. Raw logits (identity activation), so ``ce_qn − ce_qp`` is the cross-encoder's
    log-odds that the negative beats the positive; pass them to :func:`flag_triplets` as columns ``ce_qp`` and
    ``ce_qn``. ``local_files_only=True`` (default): nothing is downloaded at run time.
    """
    import torch
    from sentence_transformers import CrossEncoder

    _check_columns(table, ("query", "positive", "negative"))
    model = CrossEncoder(model_name_or_path, local_files_only=local_files_only)
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


# ---------------------------------------------------------------------------------------------------------------
# Baselines


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as scipy's ``rankdata(method="average")``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    counts = np.diff(np.r_[first, xs.size])
    avg = first + (counts + 1) / 2.0
    ranks = np.empty_like(x)
    ranks[order] = avg[group]
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
