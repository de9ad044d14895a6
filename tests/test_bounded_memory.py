"""Issue 11 (scale, memory): the steps that now work a chunk at a time give exactly the numbers of the one-step
forms they replaced, whatever the chunk size, and the TF-IDF/LSA encoder's hapax merge keeps its LSA."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import ecisem_core.embed.cache as cache_mod
import ecisem_core.metric.lexical as lexical
import ecisem_core.metric.terms as terms
from ecisem_core.curation.features import lexical_features
from ecisem_core.embed.cache import EmbeddingCache, shard_checksum
from ecisem_core.embed.encoders import TfidfLsaEncoder, hapax_merge, l2_normalise, unmerged_signs
from ecisem_core.embed.texts import factorize_columns
from ecisem_core.metric.logdet import weighted_gram, weighted_grams
from ecisem_core.metric.terms import residual_directions

WORDS = np.array(["paris", "capital", "France", "Ünïcode", "wörds", "ΣΊΣΥΦΟΣ", "a", "b", "c", "of", "the", "x1"])


def texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = [" ".join(WORDS[rng.integers(0, WORDS.size, rng.integers(0, 9))]) for _ in range(n)]
    return out + ["", "!!!", "a\x01b"]  # no tokens, no word tokens, the row separator inside a text


def triplets(n: int = 60, seed: int = 1) -> pd.DataFrame:
    pool = list(dict.fromkeys(texts(40, seed)))
    rng = np.random.default_rng(seed)
    pick = lambda: [pool[i] for i in rng.integers(0, len(pool), n)]  # noqa: E731
    return pd.DataFrame({"query": pick(), "positive": pick(), "negative": pick()})


def test_word_term_vocab_does_not_depend_on_the_chunk(monkeypatch):
    t = texts(200)
    whole_x, whole_v = lexical.word_term_vocab(t)
    ref_x, ref_v = lexical.binary_term_matrix(t, lexical.word_tokenize)
    for budget in (1, 7, 50):
        monkeypatch.setattr(lexical, "TOKEN_CHUNK_CHARS", budget)
        assert len(lexical.text_chunks(t)) > 1
        x, v = lexical.word_term_vocab(t)
        assert v.tolist() == whole_v.tolist() == list(ref_v)
        assert (x.data.dtype, x.indices.dtype, x.indptr.dtype) == (np.float64, ref_x.indices.dtype, ref_x.indptr.dtype)
        assert np.array_equal(x.indptr, whole_x.indptr) and np.array_equal(x.indices, whole_x.indices)
        assert np.array_equal(x.data, whole_x.data)
        assert (x != ref_x).nnz == 0


def test_text_chunks_cover_every_text_once():
    t = texts(50)
    for budget in (1, 3, 40, 10**9):
        spans = lexical.text_chunks(t, budget)
        assert spans[0][0] == 0 and spans[-1][1] == len(t)
        assert all(a < b for a, b in spans) and all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))
    assert lexical.text_chunks([]) == []


def test_rho_and_lexical_features_do_not_depend_on_the_chunk(monkeypatch):
    tab = triplets(90)
    tok = lexical.triplet_token_matrix(tab["query"], tab["positive"], tab["negative"])
    rho, feats = lexical.token_residuality(tok), lexical_features(tab, tokens=tok)
    for size in (1, 7):
        monkeypatch.setattr(lexical, "TRIPLET_CHUNK", size)
        assert len(lexical.row_chunks(len(tab))) > 1
        assert np.array_equal(lexical.token_residuality(tok), rho)
        pd.testing.assert_frame_equal(lexical_features(tab, tokens=tok), feats, check_exact=True)


def test_residual_directions_do_not_depend_on_the_chunk(monkeypatch):
    rng = np.random.default_rng(2)
    e = l2_normalise(rng.standard_normal((3, 37, 16)).reshape(-1, 16)).reshape(3, 37, 16)
    e[2, 5] = e[0, 5]  # a negative equal to its query: r̂ = 0
    whole = residual_directions(*e)
    monkeypatch.setattr(terms, "RESIDUAL_CHUNK", 4)
    assert whole.dtype == np.float64 and np.array_equal(residual_directions(*e), whole)
    assert not whole[5].any()


def test_weighted_grams_match_one_gram_per_weighting():
    rng = np.random.default_rng(3)
    for n, d in ((50, 8), (8, 50)):
        r = rng.standard_normal((n, d))
        ws = rng.random((n, 3))
        grams = weighted_grams(r, ws)
        for j in range(3):
            assert np.allclose(grams[j], weighted_gram(r, ws[:, j]), rtol=1e-12, atol=1e-12)


def test_factorize_columns_is_factorize_of_the_concatenation():
    cols = [pd.Series(["b", "a", None, "b"]), pd.Series(["c", "a"], dtype=object), pd.Series(["d", "c", "b"])]
    codes, uniques = factorize_columns(cols)
    ref_codes, ref_uniques = pd.factorize(np.concatenate([c.astype(str).to_numpy() for c in cols]))
    assert uniques == list(ref_uniques)
    assert np.array_equal(np.concatenate(codes), ref_codes)


def test_cache_checksum_and_chunked_copy(tmp_path, monkeypatch):
    rng = np.random.default_rng(4)
    keys = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(300)]
    vecs = rng.standard_normal((300, 8)).astype(np.float32)
    h = hashlib.sha256()
    h.update(np.asarray(keys, dtype="S40").tobytes())
    h.update(vecs.tobytes())
    assert shard_checksum(np.asarray(keys, dtype="S40"), vecs) == h.hexdigest()
    assert shard_checksum(np.zeros(0, dtype="S40"), np.zeros((0, 8), np.float32))  # empty shard: no error
    cache = EmbeddingCache(tmp_path, "m")
    cache.store(keys[:200], vecs[:200])
    cache.store(keys[150:], vecs[150:])
    monkeypatch.setattr(cache_mod, "CHUNK_BYTES", 100)  # a few rows per step
    want = keys[::-1] + ["0" * 40]
    out, found = cache.lookup(want)
    assert found.tolist() == [True] * 300 + [False]
    assert np.array_equal(out[:300], vecs[::-1]) and not out[300].any()


def random_docs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(400)])
    return sorted({" ".join(vocab[rng.integers(0, vocab.size, 20)]) for _ in range(n)})


def test_hapax_merge_keeps_the_gram_matrix_and_the_lsa():
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2)).fit_transform(random_docs(120, 5))
    t, scale = hapax_merge(x)
    assert x.shape[0] < t.shape[1] < x.shape[1] / 4  # random bigrams: most columns are hapaxes
    xt = x @ t
    assert np.allclose((xt @ xt.T).toarray(), (x @ x.T).toarray(), atol=1e-12)
    assert np.allclose((t @ (t.T @ x.T)).toarray(), x.T.toarray(), atol=1e-12)  # T Tᵀ xᵀ = xᵀ
    new = x[:5] + sp.random(5, x.shape[1], density=0.01, random_state=0, format="csr")  # texts not fitted as such
    a = TruncatedSVD(10, algorithm="arpack").fit(x)  # exact top-k
    b = TruncatedSVD(10, algorithm="arpack").fit(xt)
    assert np.allclose(a.singular_values_, b.singular_values_, rtol=1e-10)
    assert np.allclose(b.components_ @ t.T, a.components_ * unmerged_signs(b.components_, scale)[:, None], atol=1e-9)
    sign = unmerged_signs(b.components_, scale)
    assert np.allclose(a.transform(new), b.transform(new @ t) * sign, atol=1e-9)
    small = sp.csr_matrix(np.eye(3))  # as many texts as columns: nothing to gain, no merge
    assert hapax_merge(small) is None
    assert hapax_merge(sp.csr_matrix(np.ones((2, 5)))) is None  # no hapax


@pytest.mark.parametrize("seed", [6, 7])
def test_tfidf_encoder_gives_the_unmerged_vectors(seed):
    """The encoder fits its SVD on the merged matrix; its vectors are those of the plain TF-IDF → randomized SVD
    pipeline it replaced (same seed), signs included, up to float32 rounding, for fitted and new texts."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = random_docs(150, seed)
    enc = TfidfLsaEncoder(n_components=16).fit(docs)
    assert len(enc._pipeline.steps) == 3  # vectorizer, hapax merge, SVD
    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
    svd = TruncatedSVD(n_components=16, random_state=0).fit(vec.fit_transform(docs))
    probe = [*docs, "w1 w2 w3 w4 w5", docs[0] + " w399 w398"]
    got = enc.encode(probe, "passage")
    want = l2_normalise(svd.transform(vec.transform(probe)))
    assert got.shape == (len(probe), 16) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


@pytest.mark.parametrize("n", [1, 2])
def test_tfidf_encoder_tiny_inputs(n):
    docs = ["alpha beta", "gamma delta"][:n]
    assert TfidfLsaEncoder(n_components=8).fit(docs).encode(docs, "passage").shape[0] == n


@pytest.mark.parametrize("chunk", [1, 3, 8192])
def test_similarities_do_not_depend_on_the_chunk_or_the_worker_threads(chunk, monkeypatch):
    rng = np.random.default_rng(4)
    m = l2_normalise(rng.standard_normal((40, 24))).astype(np.float32)
    qi, pi, ni = (rng.integers(0, 40, 101) for _ in range(3))
    pairs = ((qi, pi), (qi, ni), (pi, ni))
    one_by_one = [np.array([float(np.dot(m[a], m[b])) for a, b in zip(x, y)]) for x, y in pairs]
    monkeypatch.setattr(terms, "PARTS_PER_CORE", 7)  # many parts: every worker thread gets some
    got = terms.similarities(m, qi, pi, ni, chunk=chunk)
    for g, ref in zip(got, one_by_one):
        assert g.dtype == np.float64 and np.allclose(g, ref, rtol=0, atol=1e-6)
    assert all(np.array_equal(g, r) for g, r in zip(got, terms.similarities(m, qi, pi, ni, chunk=101)))
