"""Tokenizers, smoothed BM25 IDF and lexical residuality ρ.

    idf(t) = ln(1 + (D − df(t) + 0.5) / (df(t) + 0.5))          D = number of IDF documents
    ρ(q, p, n) = Σ_{t ∈ T(n) \\ T(q ∪ p)} idf(t) / Σ_{t ∈ T(n)} idf(t)   over unique tokens; 0 for an empty n

Everything is computed on binary (unique-token) sparse document–term matrices, one row per unique text, so
ρ for 100k triplets is a handful of sparse products, not a Python loop.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

Tokenizer = Callable[[str], list[str]]

_WORD = re.compile(r"\w+", re.UNICODE)


def word_tokenize(text: str) -> list[str]:
    """Lower-cased word tokens (``\\w+``, Unicode-aware).

    >>> word_tokenize("Don't PANIC: 42 towels!")
    ['don', 't', 'panic', '42', 'towels']
    """
    return _WORD.findall(text.lower())


def binary_term_matrix(
    texts: Sequence[str], tokenize: Tokenizer, vocab: dict[str, int] | None = None
) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Binary CSR matrix X[i, t] = 1 when token t occurs in texts[i] (unique tokens), and the vocabulary.

    The vocabulary grows with new tokens when given (it is extended in place), so several text sets can share one.
    """
    vocab = {} if vocab is None else vocab
    indptr = [0]
    indices: list[int] = []
    for text in texts:
        cols = {vocab.setdefault(tok, len(vocab)) for tok in tokenize(text)}
        indices.extend(cols)
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float64)
    x = sp.csr_matrix(
        (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
        shape=(len(texts), len(vocab)),
    )
    return x, vocab


_ROW_SEP = "\x01"
_TOKEN_OR_SEP = re.compile(r"\w+|\x01", re.UNICODE)


def word_term_matrix(texts: Sequence[str]) -> tuple[sp.csr_matrix, int]:
    """Binary unique-token matrix with :func:`word_tokenize`'s tokens, built with one regex pass over all texts
    (no per-text Python work); returns (X, vocabulary size). Same result as
    ``binary_term_matrix(texts, word_tokenize)`` up to the order of the columns.

    >>> x, v = word_term_matrix(["b a b", "", "a c"])
    >>> x.toarray().tolist(), v
    ([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]], 3)
    """
    n = len(texts)
    if n == 0:
        return sp.csr_matrix((0, 0)), 0
    big = _ROW_SEP.join(t.replace(_ROW_SEP, " ") for t in texts).lower()
    tokens = _TOKEN_OR_SEP.findall(big)
    codes, uniques = pd.factorize(pd.Series(tokens, dtype=object))
    is_sep = np.zeros(len(uniques), dtype=bool)
    sep_code = np.flatnonzero(uniques == _ROW_SEP)
    is_sep[sep_code] = True
    sep = is_sep[codes]
    row = np.cumsum(sep)[~sep]
    col = codes[~sep]
    if sep_code.size:  # vocabulary without the separator: shift codes above it down by one
        col = col - (col > sep_code[0])
    vocab = len(uniques) - int(sep_code.size)
    x = sp.csr_matrix((np.ones(col.size), (row, col)), shape=(n, vocab))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x, vocab


def smoothed_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """BM25's smoothed IDF, idf = ln(1 + (D − df + 0.5)/(df + 0.5)); always > 0.

    >>> round(float(smoothed_idf(np.array([1]), 3)[0]), 6)   # ln(1 + 2.5/1.5)
    0.980829
    """
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((n_docs - df + 0.5) / (df + 0.5))


def idf_vector(doc_matrix: sp.csr_matrix, n_columns: int | None = None) -> np.ndarray:
    """Smoothed IDF of every column of a binary document–term matrix (D = its number of rows).

    ``n_columns`` pads for tokens added to the vocabulary after the IDF documents (df = 0 → the largest idf).
    """
    n_docs = doc_matrix.shape[0]
    df = np.asarray(doc_matrix.sum(axis=0)).ravel()
    if n_columns is not None and n_columns > df.size:
        df = np.concatenate([df, np.zeros(n_columns - df.size)])
    return smoothed_idf(df, n_docs)


def _pad_columns(x: sp.csr_matrix, n_columns: int) -> sp.csr_matrix:
    if x.shape[1] == n_columns:
        return x
    return sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], n_columns))


def residuality(
    x_query: sp.csr_matrix, x_positive: sp.csr_matrix, x_negative: sp.csr_matrix, idf: np.ndarray
) -> np.ndarray:
    """ρ per row: the share of the negative's IDF mass not already in the query ∪ positive.

    Rows of the three matrices are aligned triplets (binary, same vocabulary). ρ = 0 when the negative has no
    tokens. Result in [0, 1].
    """
    n_cols = idf.size
    xq, xp, xn = (_pad_columns(m.tocsr(), n_cols) for m in (x_query, x_positive, x_negative))
    total = xn @ idf
    covered_mask = (xq + xp).sign()
    covered = xn.multiply(covered_mask) @ idf
    covered = np.asarray(covered).ravel()
    total = np.asarray(total).ravel()
    rho = np.zeros_like(total)
    ok = total > 0
    rho[ok] = (total[ok] - covered[ok]) / total[ok]
    return np.clip(rho, 0.0, 1.0)


def residuality_indexed(
    texts: Sequence[str],
    qi: np.ndarray,
    pi: np.ndarray,
    ni: np.ndarray,
    tokenize: Tokenizer = word_tokenize,
    idf_corpus: Sequence[str] | None = None,
) -> np.ndarray:
    """ρ for triplets given as index arrays into a list of unique texts.

    IDF documents: the unique passages (texts at ``pi`` ∪ ``ni``) unless ``idf_corpus`` is given; tokens absent
    from the IDF documents get df = 0 (the largest idf).
    """
    corpus = [] if idf_corpus is None else list(dict.fromkeys(idf_corpus))
    if tokenize is word_tokenize:  # fast path, same tokens
        x_both, n_vocab = word_term_matrix([*texts, *corpus])
    else:
        x_both, vocab = binary_term_matrix([*texts, *corpus], tokenize)
        n_vocab = len(vocab)
    x_all, x_corpus = x_both[: len(texts)], x_both[len(texts) :]
    if idf_corpus is None:
        doc_rows = np.unique(np.concatenate([np.asarray(pi), np.asarray(ni)]))
        idf = idf_vector(x_all[doc_rows], n_vocab)
    else:
        idf = idf_vector(x_corpus, n_vocab)
    return residuality(x_all[qi], x_all[pi], x_all[ni], idf)


def residuality_from_texts(
    queries: Sequence[str],
    positives: Sequence[str],
    negatives: Sequence[str],
    tokenize: Tokenizer = word_tokenize,
    idf_corpus: Sequence[str] | None = None,
) -> np.ndarray:
    """ρ for aligned lists of texts (de-duplicated, then :func:`residuality_indexed`).

    Example: query "a b", positive "b c", negative "c d": T(n) = {c, d}, only d is new, so
    ρ = idf(d) / (idf(c) + idf(d)) with idf over the passages {"b c", "c d"}.
    """
    texts, inverse = np.unique(np.asarray([*queries, *positives, *negatives], dtype=object), return_inverse=True)
    n = len(queries)
    return residuality_indexed(list(texts), inverse[:n], inverse[n : 2 * n], inverse[2 * n :], tokenize, idf_corpus)
