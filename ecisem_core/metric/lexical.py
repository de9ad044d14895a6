"""Tokenizers, smoothed BM25 IDF and lexical residuality ρ.

    idf(t) = ln(1 + (D − df(t) + 0.5) / (df(t) + 0.5))          D = number of IDF documents
    ρ(q, p, n) = Σ_{t ∈ T(n) \\ T(q ∪ p)} idf(t) / Σ_{t ∈ T(n)} idf(t)   over unique tokens; 0 for an empty n

Everything is computed on binary (unique-token) sparse document–term matrices, one row per unique text, so
ρ for 100k triplets is a handful of sparse products, not a Python loop. A table's texts are tokenised once into a
:class:`~ecisem_core.metric.tokens.TokenMatrix` (:func:`token_matrix`, :func:`triplet_token_matrix`: the matrix,
its vocabulary and the passages' idf, :func:`passage_idf`), which ρ (:func:`residuality_indexed`) and the
false-negative features (:func:`ecisem_core.curation.features.lexical_features`) both read.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ecisem_core.metric.ascii_tokens import ascii_word_tokens
from ecisem_core.metric.tokens import TokenMatrix

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


TOKEN_CHUNK_CHARS = 1 << 21
"""Characters of text per step of :func:`word_term_vocab`: its token stream (an Arrow array, or for non-ASCII text
one Python string per token) is built for one chunk at a time, so its memory stays a few tens of MB however large
the table."""


def text_chunks(texts: Sequence[str], budget: int | None = None) -> list[tuple[int, int]]:
    """(start, end) ranges of consecutive texts holding about ``budget`` characters each (at least one text;
    default :data:`TOKEN_CHUNK_CHARS`).

    >>> text_chunks(["aaaa", "bb", "c", "", "dddd"], budget=5)
    [(0, 2), (2, 5)]
    """
    n = len(texts)
    if n == 0:
        return []
    budget = budget or TOKEN_CHUNK_CHARS
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    before = np.cumsum(lengths) - lengths  # characters before each text
    starts = np.unique(np.searchsorted(before, np.arange(0, max(int(lengths.sum()), 1), budget), side="left"))
    starts = starts[starts < n]
    ends = np.append(starts[1:], n)
    return [(int(a), int(b)) for a, b in zip(starts, ends)]


def _chunk_term_matrix(texts: Sequence[str], vocab: dict[str, int]) -> sp.csr_matrix:
    """Binary unique-token CSR matrix of ``texts`` (columns: ``vocab``, extended in place with the new tokens in
    order of first appearance). The ASCII texts are tokenised from their bytes (:func:`ascii_word_tokens`), the
    others by one regex pass over their joined text (:func:`_regex_word_tokens`); the two token streams are put back
    in text order before the tokens are numbered, so the columns come in the same order either way."""
    ascii_rows = np.fromiter((t.isascii() for t in texts), dtype=bool, count=len(texts))
    tokens, rows = ascii_word_tokens(texts) if ascii_rows.all() else _mixed_word_tokens(texts, ascii_rows)
    encoded = tokens.dictionary_encode()  # codes in order of first appearance, like pd.factorize
    return _stream_matrix(np.asarray(encoded.indices), encoded.dictionary.to_pylist(), rows, len(texts), vocab)


def _mixed_word_tokens(texts: Sequence[str], ascii_rows: np.ndarray) -> tuple[Any, np.ndarray]:
    """Word tokens of every text, in text order, as (``pyarrow`` string array, text of each token): the ASCII
    texts' from their bytes, the others' from the regex (its tokens are ``\\w`` characters only, never a lone
    surrogate, so Arrow holds them whatever the text)."""
    import pyarrow as pa

    found, rows = _regex_word_tokens(texts, np.flatnonzero(~ascii_rows))
    tokens = pa.array(found, type=pa.large_string())
    picked = np.flatnonzero(ascii_rows)
    if picked.size:
        more, more_rows = ascii_word_tokens([texts[i] for i in picked])
        rows = np.concatenate([rows, picked[more_rows]])
        order = np.argsort(rows, kind="stable")  # two sorted runs: one merge; a text's tokens keep their order
        tokens, rows = pa.concat_arrays([tokens, more]).take(pa.array(order)), rows[order]
    return tokens, rows


def _regex_word_tokens(texts: Sequence[str], picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`word_tokenize`'s tokens of ``texts[i]`` for i in ``picked`` (ascending), in order, from one regex pass
    over their joined text: (object array of the tokens, the text of each)."""
    big = _ROW_SEP.join(texts[i].replace(_ROW_SEP, " ") for i in picked).lower()
    found = np.asarray(_TOKEN_OR_SEP.findall(big), dtype=object)
    sep = found == _ROW_SEP
    return found[~sep], np.asarray(picked, dtype=np.int64)[np.cumsum(sep)[~sep]]


def _stream_matrix(codes: np.ndarray, uniques: Sequence[str], rows: np.ndarray, n_texts: int,
                   vocab: dict[str, int]) -> sp.csr_matrix:
    """The binary matrix of a token stream: occurrence k is token ``uniques[codes[k]]`` of text ``rows[k]``
    (``uniques`` in order of first appearance; ``vocab`` extended with the new ones)."""
    column = np.fromiter((vocab.setdefault(t, len(vocab)) for t in uniques), dtype=np.int64, count=len(uniques))
    x = sp.csr_matrix((np.ones(rows.size), (rows, column[codes])), shape=(n_texts, len(vocab)))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def word_term_vocab(texts: Sequence[str]) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary unique-token matrix with :func:`word_tokenize`'s tokens, built :data:`TOKEN_CHUNK_CHARS` characters
    of text at a time (ASCII texts from their bytes, the others by one regex pass: no per-text Python work), and its
    vocabulary (object array: the token of each column, in order of first appearance). Same result as
    ``binary_term_matrix(texts, word_tokenize)``, and the same for any chunk size. ``texts``: any sequence (a
    Series is read in its order, whatever its index).

    >>> x, v = word_term_vocab(["b a b", "", "a c"])
    >>> x.toarray().tolist(), v.tolist()
    ([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]], ['b', 'a', 'c'])
    """
    texts = texts if isinstance(texts, list) else list(texts)  # by position: chunks pick texts by number
    n = len(texts)
    if n == 0:
        return sp.csr_matrix((0, 0)), np.array([], dtype=object)
    vocab: dict[str, int] = {}
    chunks = [_chunk_term_matrix(texts[a:b], vocab) for a, b in text_chunks(texts)]
    nnz = np.cumsum([0] + [c.nnz for c in chunks])
    indptr = np.concatenate([[0]] + [c.indptr[1:] + off for c, off in zip(chunks, nnz)])
    indices = np.concatenate([c.indices for c in chunks])
    x = sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(n, len(vocab)))
    return x, np.array(list(vocab), dtype=object)


def word_term_matrix(texts: Sequence[str]) -> tuple[sp.csr_matrix, int]:
    """:func:`word_term_vocab` with the vocabulary's size instead of its tokens: (X, vocabulary size). Same result
    as ``binary_term_matrix(texts, word_tokenize)`` up to the order of the columns.

    >>> x, v = word_term_matrix(["b a b", "", "a c"])
    >>> x.toarray().tolist(), v
    ([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]], 3)
    """
    x, vocab = word_term_vocab(texts)
    return x, int(vocab.size)


def term_matrix_vocab(texts: Sequence[str], tokenize: Tokenizer = word_tokenize) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary unique-token matrix of ``texts`` and its vocabulary (the token of each column, in order of first
    appearance), for any tokenizer (:func:`word_term_vocab`'s one pass for :func:`word_tokenize`)."""
    if tokenize is word_tokenize:  # fast path, same tokens
        return word_term_vocab(texts)
    x, vocab = binary_term_matrix(texts, tokenize)
    return x, np.array(list(vocab), dtype=object)


TRIPLET_CHUNK = 16384
"""Triplets per step of the per-triplet sparse products (ρ, the false-negative features): their gathered
triplet × vocabulary matrices stay a few MB instead of three copies of the whole table's tokens."""


def row_chunks(n: int, size: int | None = None) -> list[tuple[int, int]]:
    """(start, end) ranges covering ``range(n)`` in steps of ``size`` (default :data:`TRIPLET_CHUNK`).

    >>> row_chunks(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    size = size or TRIPLET_CHUNK
    return [(a, min(a + size, n)) for a in range(0, n, size)]


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


def passage_idf(x: sp.csr_matrix, pi: np.ndarray, ni: np.ndarray, n_columns: int | None = None) -> np.ndarray:
    """Smoothed idf (:func:`smoothed_idf`) of every column of a binary text–term matrix over its passages: the D
    documents are the distinct rows P = ``pi`` ∪ ``ni`` (positives and negatives), df(t) = rows of P containing t."""
    seen = np.zeros(x.shape[0], dtype=bool)  # the distinct rows, ascending, without sorting 2·|triplets| numbers
    seen[np.asarray(pi)] = True
    seen[np.asarray(ni)] = True
    doc_rows = np.flatnonzero(seen)
    return idf_vector(x[doc_rows], n_columns)


def token_matrix(
    texts: Sequence[str], qi: np.ndarray, pi: np.ndarray, ni: np.ndarray, tokenize: Tokenizer = word_tokenize
) -> TokenMatrix:
    """Tokenise unique ``texts`` once: the :class:`~ecisem_core.metric.tokens.TokenMatrix` of triplets given as
    index arrays into them (idf over the passages, :func:`passage_idf`)."""
    x, vocab = term_matrix_vocab(texts, tokenize)
    qi, pi, ni = (np.asarray(a, dtype=np.int64) for a in (qi, pi, ni))
    return TokenMatrix(x, vocab, passage_idf(x, pi, ni, vocab.size), qi, pi, ni, tokenize)


def triplet_token_matrix(
    queries: pd.Series, positives: pd.Series, negatives: pd.Series, tokenize: Tokenizer = word_tokenize
) -> TokenMatrix:
    """:func:`token_matrix` of aligned text columns: texts as ``str``, de-duplicated in order of first appearance
    (queries, then positives, then negatives)."""
    n = len(queries)
    all_texts = pd.concat([queries, positives, negatives], ignore_index=True).astype(str)
    codes, uniques = pd.factorize(all_texts)
    return token_matrix(list(uniques), codes[:n], codes[n : 2 * n], codes[2 * n :], tokenize)


def corpus_idf(tokens: TokenMatrix, idf_corpus: Sequence[str]) -> np.ndarray:
    """Smoothed idf over an IDF corpus (D = its unique texts) for the columns of ``tokens`` followed by the
    corpus's own new tokens (in order of first appearance), tokenised with ``tokens.tokenize``; tokens absent from
    the corpus get df = 0 (the largest idf). The columns are those of tokenising the texts and the corpus together.
    """
    docs = list(dict.fromkeys(idf_corpus))
    xc, corpus_vocab = term_matrix_vocab(docs, tokens.tokenize)
    col = np.asarray(pd.Index(tokens.vocab, dtype=object).get_indexer(corpus_vocab), dtype=np.int64)
    new = col < 0
    col[new] = tokens.vocab.size + np.arange(int(new.sum()), dtype=np.int64)
    n_columns = int(tokens.vocab.size + new.sum())
    xc = sp.csr_matrix((xc.data, col[xc.indices], xc.indptr), shape=(xc.shape[0], n_columns))
    return idf_vector(xc, n_columns)


def token_residuality(tokens: TokenMatrix, idf_corpus: Sequence[str] | None = None) -> np.ndarray:
    """ρ (:func:`residuality`) of every triplet of a token matrix; idf over its passages (``tokens.idf``) unless
    ``idf_corpus`` is given (:func:`corpus_idf`)."""
    idf = tokens.idf if idf_corpus is None else corpus_idf(tokens, idf_corpus)
    x = tokens.x
    out = np.empty(tokens.n_triplets)
    for a, b in row_chunks(tokens.n_triplets):  # ρ of a row depends on that row only
        out[a:b] = residuality(x[tokens.qi[a:b]], x[tokens.pi[a:b]], x[tokens.ni[a:b]], idf)
    return out


def residuality_indexed(
    texts: Sequence[str],
    qi: np.ndarray,
    pi: np.ndarray,
    ni: np.ndarray,
    tokenize: Tokenizer = word_tokenize,
    idf_corpus: Sequence[str] | None = None,
    tokens: TokenMatrix | None = None,
) -> np.ndarray:
    """ρ for triplets given as index arrays into a list of unique texts.

    IDF documents: the unique passages (texts at ``pi`` ∪ ``ni``) unless ``idf_corpus`` is given; tokens absent
    from the IDF documents get df = 0 (the largest idf). ``tokens``: these texts' and triplets' token matrix when
    already built (``token_matrix(texts, qi, pi, ni, tokenize)``, shared with the false-negative features); built
    here otherwise.
    """
    if tokens is None:
        tokens = token_matrix(texts, qi, pi, ni, tokenize)
    elif tokens.tokenize is not tokenize or not tokens.describes(qi, pi, ni, len(texts)):
        raise ValueError("the token matrix was built for other texts, triplets or another tokenizer")
    return token_residuality(tokens, idf_corpus)


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
