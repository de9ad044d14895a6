"""Issue 11 (one pass over the text): the byte-level tokenising of ASCII texts gives exactly word_tokenize's tokens,
and the token matrix built from ASCII, non-ASCII and mixed chunks is the per-text reference, columns in the same
order."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ecisem_core.metric.lexical as lexical
from ecisem_core.metric.ascii_tokens import _LOWER, _WORD_BYTE, ascii_word_tokens
from ecisem_core.metric.lexical import binary_term_matrix, word_term_vocab, word_tokenize

ASCII = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40)
MIXED_CHARACTERS = list("aZ_9 .,-\x01\t\nİıΣσςß٣²ÅéŉﬁΪ̈’") + ["\u00a0", "\u2028"]
MIXED = st.text(alphabet=st.sampled_from(MIXED_CHARACTERS), max_size=30)


def test_the_byte_tables_are_pythons_word_characters_and_lower_case():
    for b in range(128):
        c = chr(b)
        assert _WORD_BYTE[b] == bool(re.fullmatch(r"\w", c, re.UNICODE)), repr(c)
        assert chr(_LOWER[b]) == c.lower(), repr(c)


@settings(max_examples=300, deadline=None)
@given(st.lists(ASCII, max_size=12))
def test_ascii_tokens_are_word_tokenize_text_by_text(texts):
    tokens, rows = ascii_word_tokens(texts)
    expected = [(i, tok) for i, t in enumerate(texts) for tok in word_tokenize(t)]
    assert list(zip(rows.tolist(), tokens.to_pylist())) == expected


def test_ascii_tokens_of_a_slice_and_of_nothing():
    tokens, rows = ascii_word_tokens(["", ""])
    assert tokens.to_pylist() == [] and rows.tolist() == []
    tokens, rows = ascii_word_tokens([])
    assert tokens.to_pylist() == [] and rows.tolist() == []
    tokens, rows = ascii_word_tokens(["end", "Start"])  # two texts back to back are two tokens
    assert tokens.to_pylist() == ["end", "start"] and rows.tolist() == [0, 1]


def test_a_non_ascii_text_is_refused():
    with pytest.raises(ValueError, match="not ASCII"):
        ascii_word_tokens(["fine", "café"])


def _same_as_reference(texts: list[str]) -> None:
    x, vocab = word_term_vocab(texts)
    ref_x, ref_vocab = binary_term_matrix(texts, word_tokenize)
    assert vocab.tolist() == list(ref_vocab)  # same columns, same order (first appearance)
    assert x.shape == ref_x.shape and (x != ref_x).nnz == 0
    assert x.has_sorted_indices and np.all(x.data == 1.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ASCII, MIXED), max_size=12))
def test_mixed_chunks_give_the_per_text_matrix(texts):
    _same_as_reference(texts)


@pytest.mark.parametrize("budget", [1, 5, 10**6])
def test_chunks_of_every_kind_give_the_per_text_matrix(monkeypatch, budget):
    texts = ["Paris is the CAPITAL", "Ünïcode wörds", "ΣΊΣΥΦΟΣ x1", "", "a\x01b", "paris café", "the_end 42",
             "İstanbul ﬁne", "x1 X1"] * 3
    monkeypatch.setattr(lexical, "TOKEN_CHUNK_CHARS", budget)
    _same_as_reference(texts)


def test_a_text_with_a_lone_surrogate_is_tokenised_like_any_other():
    texts = ["plain words", "lone \ud800 surrogate", "Ünïcode"]
    _same_as_reference(texts)


def test_a_series_is_read_in_its_order_whatever_its_index(monkeypatch):
    import pandas as pd

    shuffled = pd.Series(["é alpha", "alpha", "beta"], index=[0, 2, 1])
    x, vocab = word_term_vocab(shuffled)
    ref_x, ref_vocab = binary_term_matrix(list(shuffled), word_tokenize)
    assert vocab.tolist() == list(ref_vocab) and (x != ref_x).nnz == 0
    two_chunks = pd.concat([pd.Series(["ab cd"], dtype="str"), pd.Series(["ef AB"], dtype="str")], ignore_index=True)
    assert word_term_vocab(two_chunks)[1].tolist() == ["ab", "cd", "ef"]
    assert ascii_word_tokens(two_chunks)[0].to_pylist() == ["ab", "cd", "ef", "ab"]
    monkeypatch.setattr(lexical, "TOKEN_CHUNK_CHARS", 3)
    _same_as_reference(list(pd.Series(["ab", "é", "cd", "ü"])))
    assert word_term_vocab(pd.Series(["ab", "é", "cd", "ü"]))[1].tolist() == ["ab", "é", "cd", "ü"]
