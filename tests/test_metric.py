"""Hand-checked values and invariants of ECI_sem, classic ECI and the Shapley contributions."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.metric.classic import classic_eci, classic_eci_from_sims
from ecisem_core.metric.eci_sem import eci_sem
from ecisem_core.metric.logdet import flush_tiny, logdet_i_plus, weighted_gram, weighted_grams
from ecisem_core.metric.shapley import coalitions, eci_sem_contributions, shapley_values

# Paper v1 Table 1: (source, K, S_n, Δ_max, ECI as printed)
TABLE1 = [
    ("BM25", 50, 0.577, 0.199, 1.16),
    ("Cross-Encoder", 25, 0.606, 0.175, 0.88),
    ("LLM", 3, 0.656, 0.110, 0.26),
    ("BM25+Cross-Encoder", 75, 0.587, 0.192, 1.25),
    ("LLM+BM25", 53, 0.620, 0.152, 0.97),
    ("LLM+BM25+Cross-Encoder", 78, 0.621, 0.152, 1.06),  # 1.07 by formula; the paper's table rounds to 1.06
    ("Cross-Encoder+LLM", 28, 0.631, 0.143, 0.79),
]


@pytest.mark.parametrize("name,k,s,m,expected", TABLE1)
def test_classic_eci_reproduces_paper_table1(name, k, s, m, expected):
    assert classic_eci(k, s, m) == pytest.approx(expected, abs=0.01)


def test_classic_eci_hand_value_and_zero_cases():
    # ln(51) · 2·0.577·0.199/(0.776) = 3.931826 · 0.295946 = 1.16361
    assert classic_eci(50, 0.577, 0.199) == pytest.approx(1.16361, abs=1e-4)
    assert classic_eci(10, -0.1, 0.3) == 0.0
    assert classic_eci(10, 0.3, 0.0) == 0.0


def test_classic_eci_from_sims_uses_median_negatives_per_query():
    # query 0 has 3 negatives, query 1 has 1, query 2 has 2 → K = median(3, 1, 2) = 2
    qc = np.array([0, 0, 0, 1, 2, 2])
    s_qp = np.full(6, 0.8)
    s_qn = np.array([0.5, 0.6, 0.7, 0.4, 0.5, 0.6])
    ce = classic_eci_from_sims(s_qp, s_qn, qc)
    assert ce.k == 2
    assert ce.signal == pytest.approx(0.55)
    assert ce.margin == pytest.approx(0.25)
    assert ce.eci == pytest.approx(math.log(3) * 2 * 0.55 * 0.25 / 0.8)


def test_eci_sem_tiny_orthogonal_example():
    # r̂ = e1, e2; w = 1, 1; κ = 2 → M = I/2; (1/2) log det(2 I_2) = ln 2
    r = np.eye(2)
    res = eci_sem(r, np.ones(2), kappa=2.0)
    assert res.score == pytest.approx(math.log(2))
    assert res.info == pytest.approx(1.0)
    assert res.diversity == pytest.approx(math.log(2))
    assert res.per_dim == pytest.approx(math.log(2) / 2)


def test_eci_sem_redundant_directions_hand_value():
    # r̂ = e1 twice, w = (1, 0.5), κ = 1 → M = diag(0.75, 0) → log(1.75); info 0.75
    r = np.array([[1.0, 0.0], [1.0, 0.0]])
    res = eci_sem(r, np.array([1.0, 0.5]), kappa=1.0)
    assert res.score == pytest.approx(math.log(1.75))
    assert res.info == pytest.approx(0.75)
    assert res.diversity == pytest.approx(math.log(1.75) / 0.75)


def test_eci_sem_small_n_side_matches_large_side():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(5, 40))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    w = rng.uniform(size=5)
    a = np.sqrt(w / 5)[:, None] * r
    direct = np.linalg.slogdet(np.eye(40) + 3.0 * a.T @ a)[1] / 3.0
    assert eci_sem(r, w, 3.0).score == pytest.approx(direct, rel=1e-10)


def unit_rows(n, d, seed):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(n, d))
    return r / np.linalg.norm(r, axis=1, keepdims=True)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 30), seed=st.integers(0, 10_000),
       kappa=st.floats(0.01, 100.0))
def test_logdet_identity_both_sides_agree(n, d, seed, kappa):
    a = np.random.default_rng(seed).normal(size=(n, d))
    small = np.linalg.slogdet(np.eye(n) + kappa * a @ a.T)[1]
    large = np.linalg.slogdet(np.eye(d) + kappa * a.T @ a)[1]
    assert small == pytest.approx(large, rel=1e-8, abs=1e-8)
    assert logdet_i_plus(a, kappa) == pytest.approx(large, rel=1e-8, abs=1e-8)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(2, 24), seed=st.integers(0, 10_000), kappa=st.floats(0.1, 200.0))
def test_eci_sem_bounds_and_permutation_invariance(n, d, seed, kappa):
    r = unit_rows(n, d, seed)
    w = np.random.default_rng(seed + 1).uniform(0, 1, n)
    res = eci_sem(r, w, kappa)
    assert 0 <= res.score <= res.info + 1e-12      # log(1+x) ≤ x on every eigenvalue
    assert res.info == pytest.approx(w.mean())
    if res.info > 1e-9:
        assert 0 < res.diversity <= 1 + 1e-9
    perm = np.random.default_rng(seed + 2).permutation(n)
    assert eci_sem(r[perm], w[perm], kappa).score == pytest.approx(res.score, rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 40), d=st.integers(2, 16), seed=st.integers(0, 10_000),
       a=st.floats(0, 3), b=st.floats(0, 3), g=st.floats(0, 3), kappa=st.floats(0.5, 64))
def test_shapley_values_sum_to_log_eci_sem(n, d, seed, a, b, g, kappa):
    rng = np.random.default_rng(seed)
    r = unit_rows(n, d, seed)
    c, h, rho = rng.uniform(0.05, 1, n), rng.uniform(0.05, 1, n), rng.uniform(0.05, 1, n)
    full, phi = eci_sem_contributions(r, c, h, rho, a, b, g, kappa)
    assert sum(phi.values()) == pytest.approx(math.log(full.score), rel=1e-9, abs=1e-9)


def test_shapley_terms_equal_to_one_contribute_nothing():
    # c = h = ρ = 1 everywhere: switching a term on changes nothing, so φ_c = φ_h = φ_ρ = 0 and
    # φ_div = log(ECI_sem / info) = log D.
    r = unit_rows(50, 8, 1)
    ones = np.ones(50)
    full, phi = eci_sem_contributions(r, ones, ones, ones, 1, 1, 1, 16.0)
    assert phi["c"] == pytest.approx(0, abs=1e-12)
    assert phi["h"] == pytest.approx(0, abs=1e-12)
    assert phi["rho"] == pytest.approx(0, abs=1e-12)
    assert phi["div"] == pytest.approx(math.log(full.diversity))


def test_shapley_of_a_constant_halving_term():
    # c = 0.5 everywhere (α = 1), others 1, κ → tiny so diversity ≈ off: v gains log 0.5 whenever c joins,
    # so φ_c = log 0.5 exactly in the no-diversity coalitions and ≈ log 0.5 overall.
    r = unit_rows(30, 6, 2)
    ones = np.ones(30)
    _, phi = eci_sem_contributions(r, 0.5 * ones, ones, ones, 1, 1, 1, 1e-6)
    assert phi["c"] == pytest.approx(math.log(0.5), abs=1e-5)
    assert phi["div"] == pytest.approx(0, abs=1e-5)


def test_shapley_generic_formula_two_players():
    v = {frozenset(): 0.0, frozenset({"x"}): 1.0, frozenset({"y"}): 2.0, frozenset({"x", "y"}): 4.0}
    phi = shapley_values(v, ("x", "y"))
    assert phi == pytest.approx({"x": 1.5, "y": 2.5})
    assert len(coalitions(("x", "y", "z"))) == 8


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 60), d=st.integers(4, 24), seed=st.integers(0, 10_000), kappa=st.floats(1, 48),
       scale=st.floats(0.001, 0.2))
def test_half_half_hybrid_is_close_to_mean_of_parts(n, d, seed, kappa, scale):
    """A 50/50 mixture: concavity of log det gives hybrid ≥ mean; log(1+x) ≥ x − x²/2 bounds it above by
    mean + (κ/2)·mean tr(M_i²), which is small when κ·w is small (the regime of real sources)."""
    rng = np.random.default_rng(seed)
    r1, r2 = unit_rows(n, d, seed), unit_rows(n, d, seed + 7)
    w1, w2 = rng.uniform(0, scale, n), rng.uniform(0, scale, n)
    e1, e2 = eci_sem(r1, w1, kappa), eci_sem(r2, w2, kappa)
    hyb = eci_sem(np.vstack([r1, r2]), np.concatenate([w1, w2]), kappa)
    mean = (e1.score + e2.score) / 2
    m1 = (r1 * w1[:, None]).T @ r1 / n
    m2 = (r2 * w2[:, None]).T @ r2 / n
    bound = kappa / 2 * (np.trace(m1 @ m1) + np.trace(m2 @ m2)) / 2
    assert hyb.score >= mean - 1e-12
    assert hyb.score - mean <= bound + 1e-12


def test_flush_tiny_zeroes_entries_whose_products_would_be_subnormal():
    bound = math.sqrt(np.finfo(np.float32).tiny)  # 1.0842e-19
    a = np.array([1e-20, -1e-20, 2e-19, -0.5, 0.0, bound * 0.999], dtype=np.float32)
    assert flush_tiny(a).tolist() == pytest.approx([0.0, 0.0, 2e-19, -0.5, 0.0, 0.0], rel=1e-6, abs=0)
    assert bound == pytest.approx(1.0842022e-19, rel=1e-6)
    b = np.array([1e-160, 1e-150], dtype=np.float64)  # float64's bound is √2.2e-308 ≈ 1.5e-154
    assert flush_tiny(b).tolist() == [0.0, 1e-150]


def test_weighted_gram_by_hand_and_with_tiny_weights():
    r = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    w = np.array([1.0, 2.0, 3.0])
    # M = (1·e1e1ᵀ + 2·(0.36, 0.48; 0.48, 0.64) + 3·e2e2ᵀ) / 3 = (1.72, 0.96; 0.96, 4.28) / 3
    assert weighted_gram(r, w) == pytest.approx(np.array([[1.72, 0.96], [0.96, 4.28]]) / 3)
    # real data has weights near 1e-12 and residual components near 1e-37: products below the smallest normal
    # float32 are dropped, the matrix is the exact one to float32 rounding
    rng = np.random.default_rng(0)
    r32 = rng.standard_normal((600, 40)).astype(np.float32)
    r32[rng.random(r32.shape) < 0.01] = 6e-37
    w = np.exp(rng.uniform(np.log(1e-12), 0.0, 600))
    exact = r32.astype(np.float64).T @ (r32.astype(np.float64) * (w / 600)[:, None])
    assert np.allclose(weighted_gram(r32, w), exact, rtol=1e-5, atol=1e-7)
    assert np.allclose(weighted_grams(r32, np.stack([w, 2 * w], 1))[1], 2 * exact, rtol=1e-5, atol=1e-7)


def test_coding_rate_qr_by_hand_and_against_the_cholesky_of_the_gram():
    from ecisem_core.metric.logdet import coding_rate, coding_rate_qr, weighted_gram

    # r̂ = e1, e2; w = 1, 1; κ = 2 → M = I/2; (1/2) log det(2 I_2) = ln 2
    assert coding_rate_qr(np.eye(2) * np.sqrt(0.5), 2.0) == pytest.approx(np.log(2.0), rel=1e-12)
    rng = np.random.default_rng(5)
    for n, d in ((7, 12), (40, 12)):  # both sides
        r = rng.normal(size=(n, d))
        r /= np.linalg.norm(r, axis=1, keepdims=True)
        w = rng.uniform(0.1, 1.0, n)
        a = r * np.sqrt(w / n)[:, None]
        assert coding_rate_qr(a, 24.0) == pytest.approx(coding_rate(weighted_gram(r, w), 24.0), rel=1e-10)
    assert coding_rate_qr(np.zeros((0, 5)), 3.0) == 0.0


def test_coding_rate_qr_holds_where_a_float32_gram_is_not_positive_definite():
    """Weights of 10¹² (a negative exponent on a floored term): the float32 Gram's rounding exceeds the identity
    and its Cholesky fails; the float64 QR gives the float64 value."""
    from ecisem_core.metric.logdet import coding_rate, coding_rate_qr, weighted_gram

    rng = np.random.default_rng(0)
    r = rng.normal(size=(500, 384))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    w = 10.0 ** rng.uniform(0, 12, 500)
    with pytest.raises(np.linalg.LinAlgError):
        coding_rate(weighted_gram(r.astype(np.float32), w), 768.0)
    a = r * np.sqrt(w / 500)[:, None]
    assert coding_rate_qr(a, 768.0) == pytest.approx(coding_rate(weighted_gram(r, w), 768.0), rel=1e-9)


def test_row_floors_and_the_skipped_flush_change_no_value():
    from ecisem_core.metric.logdet import row_floors, scaled_rows

    r = np.array([[0.0, -0.25, 0.5], [0.0, 0.0, 0.0], [3e-30, 1.0, -2.0]], dtype=np.float32)
    assert row_floors(r).tolist() == pytest.approx([0.25, math.inf, 3e-30], rel=1e-6)
    assert row_floors(r).dtype == np.float32
    rng = np.random.default_rng(3)
    for tiny in (False, True):  # True: some scaled entries fall below the flush bound, so the flush must run
        r32 = rng.standard_normal((300, 20)).astype(np.float32)
        if tiny:
            r32[rng.random(r32.shape) < 0.02] = 6e-19
        w = np.exp(rng.uniform(np.log(1e-9), 0.0, 300))
        plain = scaled_rows(r32, w, 417.0)
        fast = scaled_rows(r32.copy(), w, 417.0, floor=row_floors(r32), overwrite=True)
        assert np.array_equal(plain, fast)
        assert (np.abs(plain[plain != 0]) >= math.sqrt(np.finfo(np.float32).tiny)).all()
    kept = r32.copy()
    scaled_rows(kept, w, 417.0, floor=row_floors(r32))  # overwrite=False: the input is left alone
    assert np.array_equal(kept, r32)


def test_cholesky_diagonal_by_hand_in_place_and_on_bad_input():
    from ecisem_core.metric.cholesky import cholesky_diagonal

    # [[4, 2], [2, 5]] = L Lᵀ with L = [[2, 0], [1, 2]]: diagonal (2, 2)
    assert cholesky_diagonal(np.array([[4.0, 2.0], [2.0, 5.0]])).tolist() == [2.0, 2.0]
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 30))
    m = a.T @ a + np.eye(30)
    assert np.allclose(cholesky_diagonal(m.copy()), np.diag(np.linalg.cholesky(m)), rtol=1e-12)
    assert cholesky_diagonal(np.empty((0, 0))).shape == (0,)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        cholesky_diagonal(np.array([[1.0, 2.0], [2.0, 1.0]]))
    for bad in (m.astype(np.float32), np.asfortranarray(m[:, :29]), m[::2, ::2], np.ones(3)):
        with pytest.raises(ValueError, match="C-contiguous"):
            cholesky_diagonal(bad)


def test_logdet_takes_a_gram_matrix_in_either_memory_order():
    from ecisem_core.metric.logdet import logdet_i_plus_gram

    a = np.random.default_rng(2).standard_normal((60, 12))
    g = a.T @ a / 60
    assert logdet_i_plus_gram(np.asfortranarray(g), 8.0) == logdet_i_plus_gram(np.ascontiguousarray(g), 8.0)
    assert logdet_i_plus_gram(g.T, 8.0) == pytest.approx(logdet_i_plus_gram(g, 8.0), rel=1e-14)
