"""The shared token matrix (ecisem_core.metric.tokens): ρ and the false-negative features read the same numbers from
one tokenisation as from their own, and ``prepare`` tokenises the table's texts once."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ecisem_core.metric.lexical as lexical
from ecisem_core.config import ScoreConfig
from ecisem_core.curation.features import lexical_features, triplet_features
from ecisem_core.curation.fn_score import flag_triplets
from ecisem_core.metric.lexical import (
    idf_vector, residuality, residuality_indexed, token_matrix, triplet_token_matrix, word_term_matrix,
)
from ecisem_core.metric.tokens import TokenMatrix
from ecisem_core.score import prepare
from helpers import HashEncoder

QUERIES = ["capital of France", "Ünïcode wörds ok", "capital of France", "!!!", "ΣΊΣΥΦΟΣ myth", "a b", "x"]
POSITIVES = ["Paris is the capital of France.", "wörds ÜNÏCODE", "Paris is the capital of France.", "!!!",
             "σίσυφος rolls a stone", "b c", "ünïcode wörds ok"]
NEGATIVES = ["Paris is the capital of France.", "!!!", "Lyon is a city in France", "", "ΣΊΣΥΦΟΣ rolls ΣΤΟΝΕ",
             "capital of France", "Ünïcode wörds ok"]
"""Repeated texts (a query and a negative are the same text, one negative is a positive), unicode (case folding,
Greek final sigma), texts without tokens ("!!!", "")."""
CORPUS = ["paris capital", "capital of france", "", "new words only here", "paris capital", "σίσυφος"]


def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = len(QUERIES)
    return pd.DataFrame({
        "query": QUERIES, "positive": POSITIVES, "negative": NEGATIVES, "source": ["a", "b"] * 3 + ["a"],
        "query_id": [f"q{i}" for i in range(n)], "s_qp": rng.uniform(0.3, 0.9, n), "s_qn": rng.uniform(0.3, 0.9, n),
        "s_pn": rng.uniform(0.3, 1.0, n),
    })


def layouts(t: pd.DataFrame) -> dict[str, tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]:
    """Unique texts and triplet rows as ``embed_triplets`` lays them out: one block of all unique texts, or (for
    encoders with query/passage prompts) unique queries then unique passages, a text in both blocks twice."""
    q, p, n = (t[c].astype(str).to_numpy() for c in ("query", "positive", "negative"))
    m = len(t)
    codes, uniq = pd.factorize(np.concatenate([q, p, n]))
    q_codes, q_uniq = pd.factorize(q)
    pn_codes, pn_uniq = pd.factorize(np.concatenate([p, n]))
    return {
        "one block": (list(uniq), codes[:m], codes[m: 2 * m], codes[2 * m:]),
        "query and passage blocks": ([*q_uniq, *pn_uniq], q_codes, pn_codes[:m] + len(q_uniq),
                                     pn_codes[m:] + len(q_uniq)),
    }


def rho_joint(texts, qi, pi, ni, corpus=None) -> np.ndarray:
    """ρ as computed before the shared matrix: texts (and the corpus) tokenised together, one matrix."""
    docs = [] if corpus is None else list(dict.fromkeys(corpus))
    x, v = word_term_matrix([*texts, *docs])
    xt, xc = x[: len(texts)], x[len(texts):]
    idf = idf_vector(xt[np.unique(np.concatenate([pi, ni]))], v) if corpus is None else idf_vector(xc, v)
    return residuality(xt[qi], xt[pi], xt[ni], idf)


def test_token_matrix_holds_the_tokens_and_the_passages_smoothed_idf():
    tm = token_matrix(["a b", "b c", "c d"], np.array([0]), np.array([1]), np.array([2]))
    assert isinstance(tm, TokenMatrix) and tm.vocab.tolist() == ["a", "b", "c", "d"]
    assert tm.x.toarray().tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    # passages {"b c", "c d"}, D = 2: df 0, 1, 2, 1 → ln(1 + (D − df + 0.5)/(df + 0.5))
    assert tm.idf == pytest.approx([math.log(6), math.log(2), math.log(1.2), math.log(2)])
    assert tm.sizes().tolist() == [2, 2, 2] and (tm.n_texts, tm.n_triplets) == (3, 1)


@pytest.mark.parametrize("corpus", [None, CORPUS, []])
def test_rho_from_the_shared_matrix_equals_the_separate_tokenisation(corpus):
    for texts, qi, pi, ni in layouts(table()).values():
        shared = token_matrix(texts, qi, pi, ni)
        got = residuality_indexed(texts, qi, pi, ni, idf_corpus=corpus, tokens=shared)
        alone = residuality_indexed(texts, qi, pi, ni, idf_corpus=corpus)
        before = rho_joint(texts, qi, pi, ni, corpus)
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-12)
        np.testing.assert_allclose(got, before, rtol=0, atol=1e-12)
        assert got[3] == 0.0  # "" has no tokens: ρ = 0


def test_rho_with_another_tokenizer_and_a_corpus_equals_tokenising_together():
    def split(text: str) -> list[str]:
        return text.lower().split()

    texts, qi, pi, ni = layouts(table())["one block"]
    got = residuality_indexed(texts, qi, pi, ni, split, CORPUS, tokens=token_matrix(texts, qi, pi, ni, split))
    docs = list(dict.fromkeys(CORPUS))
    x, vocab = lexical.binary_term_matrix([*texts, *docs], split)
    xt = x[: len(texts)]
    before = residuality(xt[qi], xt[pi], xt[ni], idf_vector(x[len(texts):], len(vocab)))
    np.testing.assert_allclose(got, before, rtol=0, atol=1e-12)


def test_a_matrix_of_other_triplets_or_tokens_is_refused():
    texts, qi, pi, ni = layouts(table())["one block"]
    tm = token_matrix(texts, qi, pi, ni)
    with pytest.raises(ValueError):
        residuality_indexed(texts, qi, ni, pi, tokens=tm)
    with pytest.raises(ValueError):
        residuality_indexed(texts, qi, pi, ni, str.split, tokens=tm)
    with pytest.raises(ValueError):
        lexical_features(table().iloc[:3], tokens=tm)


@pytest.mark.parametrize("layout", ["one block", "query and passage blocks"])
def test_features_and_flags_from_the_shared_matrix_equal_the_separate_path(layout):
    t = table()
    tm = token_matrix(*layouts(t)[layout])
    pd.testing.assert_frame_equal(triplet_features(t, tokens=tm), triplet_features(t), check_exact=True)
    shared, alone = flag_triplets(t, tokens=tm), flag_triplets(t)
    pd.testing.assert_frame_equal(shared, alone, check_exact=True)
    assert shared["fn_reasons"].tolist() == alone["fn_reasons"].tolist()
    assert (shared["fn_flag"].to_numpy() == alone["fn_flag"].to_numpy()).all()
    # both layouts number the tokens alike (first appearance), so key terms tied on idf are chosen alike
    assert triplet_token_matrix(t["query"], t["positive"], t["negative"]).vocab.tolist() == tm.vocab.tolist()


@pytest.mark.parametrize("role_aware", [False, True])
def test_prepare_tokenises_once_and_gives_the_separate_paths_numbers(monkeypatch, tmp_path, role_aware):
    calls: list[int] = []

    def counting(fn):
        def wrapped(texts, *args, **kw):
            calls.append(len(texts))
            return fn(texts, *args, **kw)
        return wrapped

    for name in ("word_term_vocab", "binary_term_matrix"):
        monkeypatch.setattr(lexical, name, counting(getattr(lexical, name)))
    t = table().drop(columns=["s_qp", "s_qn", "s_pn"])
    prep = prepare(t, HashEncoder(role_aware), ScoreConfig(), use_cache=False)
    assert len(calls) == 1  # every unique text of the table, once: the flags and ρ read the same matrix
    assert prep.tokens is not None and prep.tokens.n_triplets == len(t)
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(CORPUS), encoding="utf-8")
    rho_corpus = prep.rho(ScoreConfig(idf_corpus=str(corpus_file)))
    assert calls[1:] == [len([c for c in dict.fromkeys(CORPUS) if c])]  # only the corpus is tokenised then
    monkeypatch.undo()

    e = prep.embedded
    np.testing.assert_allclose(prep.rho(ScoreConfig()), rho_joint(e.texts, e.qi, e.pi, e.ni), rtol=0, atol=1e-12)
    corpus = [c for c in CORPUS if c]  # read_corpus skips blank lines
    np.testing.assert_allclose(rho_corpus, rho_joint(e.texts, e.qi, e.pi, e.ni, corpus), rtol=0, atol=1e-12)
    alone = flag_triplets(prep.triplets.assign(s_qp=prep.s_qp, s_qn=prep.s_qn, s_pn=prep.s_pn))
    pd.testing.assert_frame_equal(prep.flags, alone, check_exact=True)
