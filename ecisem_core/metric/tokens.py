"""The token view of a triplet table, built once and shared: :class:`TokenMatrix`.

Both lexical consumers of a table read the same tokens — lexical residuality ρ
(:func:`ecisem_core.metric.lexical.residuality_indexed`) and the false-negative features token Jaccard and key-term
coverage (:func:`ecisem_core.curation.features.lexical_features`) — so ``prepare`` tokenises every unique text once
(:func:`ecisem_core.metric.lexical.token_matrix`) and passes the result to both.

What it holds: ``x``, the binary unique-token matrix, x[i, t] = 1 when token t occurs in text i (one row per unique
text, one column per vocabulary token, in order of first appearance); ``vocab``, the token of each column; ``qi``,
``pi``, ``ni``, the rows of each triplet's query, positive and negative; ``idf``, per column, BM25's smoothed IDF
over the passages::

    idf(t) = ln(1 + (D − df(t) + 0.5) / (df(t) + 0.5))       D = |P|, df(t) = |{i ∈ P : x[i, t] = 1}|,
                                                              P = the distinct passage rows (pi ∪ ni)

the formula defined by :func:`ecisem_core.metric.lexical.smoothed_idf` (docs/METRIC.md §2.1, "ρ"; §6 lists where
each formula lives), computed for a matrix by :func:`ecisem_core.metric.lexical.passage_idf`. The same IDF weighs ρ
and the key terms of cov. Only the type lives here (this module imports nothing from the project), so
:mod:`ecisem_core.metric.lexical` both builds it and reads it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class TokenMatrix:
    """Unique-text token matrix of a triplet table, its vocabulary and the passages' smoothed IDF.

    Attributes:
        x: binary CSR matrix (unique texts × vocabulary), float64, sorted indices.
        vocab: object array, the token of each column of ``x``.
        idf: smoothed BM25 idf of each column over the distinct passage rows (module docstring).
        qi, pi, ni: int64 row of ``x`` holding each triplet's query, positive and negative.
        tokenize: the tokenizer the tokens come from (one text → its tokens).
    """

    x: sp.csr_matrix
    vocab: np.ndarray
    idf: np.ndarray
    qi: np.ndarray
    pi: np.ndarray
    ni: np.ndarray
    tokenize: Callable[[str], list[str]]

    @property
    def n_texts(self) -> int:
        """Number of unique texts (rows of ``x``)."""
        return int(self.x.shape[0])

    @property
    def n_triplets(self) -> int:
        """Number of triplets (length of ``qi``, ``pi``, ``ni``)."""
        return int(self.qi.size)

    def sizes(self) -> np.ndarray:
        """|T(text)|, the number of distinct tokens of every unique text (float64)."""
        return np.diff(self.x.indptr).astype(np.float64)

    def describes(self, qi: np.ndarray, pi: np.ndarray, ni: np.ndarray, n_texts: int) -> bool:
        """True when this matrix was built for ``n_texts`` texts and exactly these triplet rows."""
        return self.n_texts == n_texts and all(
            mine is theirs or np.array_equal(mine, np.asarray(theirs))
            for mine, theirs in ((self.qi, qi), (self.pi, pi), (self.ni, ni))
        )
