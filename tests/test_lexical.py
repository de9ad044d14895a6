"""Tokenizer, smoothed IDF and lexical residuality ρ, hand-checked."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.metric.lexical import residuality_from_texts, smoothed_idf, word_tokenize


def test_word_tokenizer_lowercases_and_splits():
    assert word_tokenize("Café au LAIT, 2 cups!") == ["café", "au", "lait", "2", "cups"]


def test_smoothed_idf_hand_values():
    # D = 2: df 2 → ln(1 + 0.5/2.5) = ln 1.2; df 1 → ln(1 + 1.5/1.5) = ln 2; df 0 → ln(1 + 2.5/0.5) = ln 6
    assert smoothed_idf(np.array([2, 1, 0]), 2) == pytest.approx([math.log(1.2), math.log(2), math.log(6)])


def test_residuality_hand_example():
    # passages {"b c", "c d"}: idf(c) = ln 1.2, idf(d) = ln 2. T(n) = {c, d}; c is in the positive.
    rho = residuality_from_texts(["a b"], ["b c"], ["c d"])
    assert rho[0] == pytest.approx(math.log(2) / (math.log(1.2) + math.log(2)))
    assert rho[0] == pytest.approx(0.791744, abs=1e-6)


def test_residuality_edge_cases():
    rho = residuality_from_texts(["a b", "a b", "x"], ["b c", "b c", "y"], ["a c", "!!!", "z"])
    assert rho[0] == 0.0   # every token of the negative is in q ∪ p
    assert rho[1] == 0.0   # no tokens: ρ = 0 by definition
    assert rho[2] == 1.0   # nothing shared


def test_residuality_with_user_corpus_unseen_tokens_get_max_idf():
    # corpus of 3 docs where "c" appears in all and "d" never: idf(c) = ln(1 + 0.5/3.5), idf(d) = ln(1 + 3.5/0.5)
    rho = residuality_from_texts(["a"], ["c"], ["c d"], idf_corpus=["c e", "c f", "c g"])
    ic, id_ = math.log(1 + 0.5 / 3.5), math.log(1 + 3.5 / 0.5)
    assert rho[0] == pytest.approx(id_ / (ic + id_))


words = st.lists(st.sampled_from(list("abcdefgh")), min_size=0, max_size=6).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(q=words, p=words, n=words)
def test_residuality_is_a_share(q, p, n):
    rho = residuality_from_texts([q], [p], [n])[0]
    assert 0.0 <= rho <= 1.0
