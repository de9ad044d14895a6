"""Evidence per triplet: the lexical features (token Jaccard, key-term coverage, lengths) and every feature the
flagger and the learned scorer read (:data:`FEATURE_COLUMNS`), vectorised over rows.

``cov`` (key-term coverage): the positive's *key terms* are its tokens that are not in the query, the top
``key_terms`` by IDF (the answer-bearing words: the query's own words are in every hard negative by construction);
``cov = Σ_{t ∈ K ∩ T(n)} idf(t) / Σ_{t ∈ K} idf(t)``. IDF: smoothed BM25 idf over the unique passages
(positives ∪ negatives) of the table, word tokenizer: the table's
:class:`~ecisem_core.metric.tokens.TokenMatrix` (:mod:`ecisem_core.metric.lexical`), which ρ reads too.

Token Jaccard: ``|T(p) ∩ T(n)| / |T(p) ∪ T(n)|`` (0 when both are empty). Target consistency
``c = σ((s_qp − s_qn)/τ)``; the relative gap ``(s_qn − s_qp)/max(|s_qp|, 1e-9)`` (the relative-margin rule is
rel_gap > −m, :mod:`ecisem_core.curation.rules`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ecisem_core.curation.junk import normalised_codes, pattern_hits
from ecisem_core.curation.rules import FlagConfig, sigmoid
from ecisem_core.errors import InputError
from ecisem_core.hashing import TEXT_COLUMNS
from ecisem_core.metric.lexical import row_chunks, triplet_token_matrix, word_tokenize
from ecisem_core.metric.lexical import word_term_matrix as term_matrix  # noqa: F401  (re-exported by negatives)
from ecisem_core.metric.tokens import TokenMatrix

REQUIRED_COLUMNS: tuple[str, ...] = ("query", "positive", "negative", "source", "query_id", "s_qp", "s_qn", "s_pn")
"""Columns :func:`triplet_features` (hence :func:`~ecisem_core.curation.fn_score.flag_triplets`) needs."""

FEATURE_COLUMNS: tuple[str, ...] = (
    "s_qp", "s_qn", "s_pn", "delta", "c", "rel_gap", "jaccard", "key_coverage", "n_key_terms",
    "n_tokens", "len_ratio", "boilerplate_count", "boilerplate_share", "pattern_hit", "identical",
)
"""Columns of :func:`triplet_features` (also the learned scorer's candidate inputs)."""


def check_columns(table: pd.DataFrame, needed: tuple[str, ...]) -> None:
    """Raise :class:`~ecisem_core.errors.InputError` naming the columns of ``needed`` that ``table`` lacks."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise InputError(f"triplet table lacks column(s) {missing}; it needs {list(needed)}")


def check_present(table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Raise :class:`~ecisem_core.errors.InputError` when a value of one of ``columns`` is missing (None, NaN),
    naming how many and the first row. A missing text would otherwise be factorised to code −1 — another text's
    vector, tokens or normalised form."""
    for col in columns:
        absent = table[col].isna().to_numpy()
        if absent.any():
            first = int(np.flatnonzero(absent)[0])
            raise InputError(f"{int(absent.sum())} triplet(s) have no {col} (missing value); the first is row "
                             f"{first} (index {table.index[first]})")


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


def lexical_features(
    table: pd.DataFrame, config: FlagConfig = FlagConfig(), tokens: TokenMatrix | None = None
) -> pd.DataFrame:
    """Token features per triplet, vectorised on sparse unique-text matrices.

    Returns (same index): ``jaccard`` = |T(p) ∩ T(n)| / |T(p) ∪ T(n)| (0 when both empty), ``key_coverage`` = cov
    (module docstring), ``n_key_terms`` = |K| (≤ ``key_terms``), ``n_tokens`` = |T(n)|, ``len_ratio`` =
    |T(n)| / max(1, |T(p)|).

    ``tokens``: the table's word-token matrix when already built (its ``qi``, ``pi``, ``ni`` are the table's rows in
    order, e.g. shared with ρ by :func:`ecisem_core.score.prepare`); built here otherwise
    (:func:`~ecisem_core.metric.lexical.triplet_token_matrix`).
    """
    n = len(table)
    if tokens is None:
        tokens = triplet_token_matrix(table["query"], table["positive"], table["negative"])
    elif tokens.n_triplets != n or tokens.tokenize is not word_tokenize:
        raise ValueError(f"the token matrix has {tokens.n_triplets} triplets (word tokens expected), the table {n}")
    x, idf, qi, pi, ni = tokens.x, tokens.idf, tokens.qi, tokens.pi, tokens.ni
    n_texts = tokens.n_texts
    sizes = tokens.sizes()

    inter = np.empty(n)
    for a, b in row_chunks(n):  # row-wise products, a chunk of triplets at a time (bounded memory)
        inter[a:b] = np.asarray(x[pi[a:b]].multiply(x[ni[a:b]]).sum(axis=1)).ravel()
    union = sizes[pi] + sizes[ni] - inter
    jaccard = np.divide(inter, union, out=np.zeros(n), where=union > 0)

    # key terms per unique (query, positive) pair: positive tokens not in the query, top-k by idf
    pair_codes, pair_uniques = pd.factorize(pd.Series(qi * (n_texts + 1) + pi))
    pair_q = pair_uniques.to_numpy() // (n_texts + 1)
    pair_p = pair_uniques.to_numpy() % (n_texts + 1)
    kp = x[pair_p]
    key = (kp - kp.multiply(x[pair_q])).tocsr()
    key.eliminate_zeros()
    key.data = idf[key.indices]
    key = _row_top_k(key, config.key_terms)
    key_mass = np.asarray(key.sum(axis=1)).ravel()
    n_key = np.diff(key.indptr)
    covered = np.empty(n)
    for a, b in row_chunks(n):
        covered[a:b] = np.asarray(key[pair_codes[a:b]].multiply(x[ni[a:b]]).sum(axis=1)).ravel()
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


def distinct_per_group(group: np.ndarray, member: np.ndarray) -> np.ndarray:
    """For each row, the number of distinct ``member`` values among the rows of its ``group`` (int64 codes; a
    negative member is a missing value, ``pd.factorize``'s −1, and is not counted): pandas'
    ``groupby(group)[member].transform("nunique")``, on integers.

    >>> distinct_per_group(np.array([0, 0, 0, 1, 1]), np.array([5, 5, 7, 5, -1])).tolist()
    [2, 2, 2, 1, 1]
    """
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    # hash-based codes (pd.factorize, linear time) instead of sorting: a count of distinct values does not depend
    # on how they are numbered (at 1M rows the sorts took 1.9 s of the flags)
    g = pd.factorize(group)[0].astype(np.int64)
    valid = member >= 0
    m = pd.factorize(member[valid])[0].astype(np.int64)
    span = int(m.max()) + 1 if m.size else 1
    pairs = pd.unique(g[valid] * span + m)
    return np.bincount(pairs // span, minlength=int(g.max()) + 1)[g].astype(np.int64)


def triplet_features(
    table: pd.DataFrame, config: FlagConfig = FlagConfig(), tokens: TokenMatrix | None = None
) -> pd.DataFrame:
    """Every piece of evidence per triplet (columns :data:`FEATURE_COLUMNS`, same index).

    ``delta`` = s_qp − s_qn, ``c`` = σ(Δ/τ), ``rel_gap`` = (s_qn − s_qp)/max(|s_qp|, 1e-9) (the relative-margin
    rule is rel_gap > −m), ``boilerplate_count`` = distinct queries of the same source sharing this negative
    text, ``boilerplate_share`` = that count over the source's distinct queries, ``pattern_hit`` = preamble/refusal
    regex match (:mod:`ecisem_core.curation.junk`), ``identical`` = normalised n == normalised p, plus
    :func:`lexical_features` (``tokens``: the table's word-token matrix, when already built).
    """
    check_columns(table, REQUIRED_COLUMNS)
    check_present(table, TEXT_COLUMNS)
    s_qp = table["s_qp"].to_numpy(dtype=np.float64)
    s_qn = table["s_qn"].to_numpy(dtype=np.float64)
    s_pn = table["s_pn"].to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(s_qp) & np.isfinite(s_qn) & np.isfinite(s_pn))
    if bad.any():
        raise InputError(f"{int(bad.sum())} row(s) have non-finite similarities (first index {table.index[bad][0]!r})")
    delta = s_qp - s_qn
    code_n, uniq_n = normalised_codes(table["negative"])
    code_p, uniq_p = normalised_codes(table["positive"])
    joint = pd.factorize(np.concatenate([uniq_n, uniq_p]))[0]  # one code space for negatives and positives
    source = pd.factorize(table["source"].astype(str))[0].astype(np.int64)
    query = pd.factorize(table["query_id"].astype(str))[0].astype(np.int64)
    boiler = distinct_per_group(source * max(uniq_n.size, 1) + code_n, query)
    source_queries = distinct_per_group(source, query).astype(np.float64)
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
            "pattern_hit": pattern_hits(uniq_n, config.junk_patterns)[code_n],  # no patterns: none hit
            "identical": joint[: uniq_n.size][code_n] == joint[uniq_n.size:][code_p],
        },
        index=table.index,
    )
    lex = lexical_features(table, config, tokens)
    feats = pd.concat([feats, lex], axis=1)
    return feats[list(FEATURE_COLUMNS)]


