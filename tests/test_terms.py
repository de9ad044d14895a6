"""Hand-checked per-triplet terms."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.metric.terms import residual_directions, semantic_locality, similarities, target_consistency, weights


def test_target_consistency_hand_values():
    # σ(0.1/0.05) = σ(2) = 0.880797; σ(−2) = 0.119203
    got = target_consistency(np.array([0.1, -0.1, 0.0]), 0.05)
    assert got == pytest.approx([0.880797, 0.119203, 0.5], abs=1e-6)


def test_semantic_locality_hand_values():
    # exp(−0.1/0.05) = e^−2 = 0.135335; negative margins clamp to 1
    got = semantic_locality(np.array([0.1, -0.3, 0.0]), 0.05)
    assert got == pytest.approx([math.exp(-2), 1.0, 1.0])


def test_weights_product_and_zero_exponent_switches_off():
    c, h, rho = np.array([0.5]), np.array([0.25]), np.array([0.0])
    assert weights(c, h, rho, 1, 1, 0)[0] == pytest.approx(0.125)
    assert weights(c, h, rho, 2, 1, 0)[0] == pytest.approx(0.0625)
    assert weights(c, h, rho, 1, 1, 1)[0] == 0.0
    assert weights(c, h, rho, 0, 0, 0)[0] == 1.0


def test_residual_direction_hand_example():
    eq = np.array([[1.0, 0, 0]])
    ep = np.array([[0, 1.0, 0]])
    en = np.array([[1.0, 1.0, 1.0]]) / math.sqrt(3)
    assert residual_directions(eq, ep, en)[0] == pytest.approx([0, 0, 1])
    # a negative inside span{e_q, e_p} has no residual
    assert residual_directions(eq, ep, np.array([[0.6, 0.8, 0]]))[0] == pytest.approx([0, 0, 0])
    # positive identical to the query: span is one-dimensional
    r = residual_directions(eq, eq, np.array([[0.6, 0.8, 0]]))[0]
    assert r == pytest.approx([0, 1, 0])


def test_similarities_by_index():
    m = np.array([[1.0, 0], [0, 1.0], [0.6, 0.8]], dtype=np.float32)
    s_qp, s_qn, s_pn = similarities(m, np.array([0]), np.array([1]), np.array([2]))
    assert (s_qp[0], s_qn[0], s_pn[0]) == pytest.approx((0.0, 0.6, 0.8))


@settings(max_examples=50, deadline=None)
@given(delta=st.floats(-2, 2), tau=st.floats(0.001, 5), seed=st.integers(0, 1000))
def test_terms_are_in_unit_interval_and_residual_is_orthogonal(delta, tau, seed):
    c = target_consistency(np.array([delta]), tau)[0]
    h = semantic_locality(np.array([delta]), tau)[0]
    assert 0 <= c <= 1 and 0 <= h <= 1
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(3, 16))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    r = residual_directions(e[:1], e[1:2], e[2:3])[0]
    assert np.linalg.norm(r) == pytest.approx(1.0)
    assert abs(r @ e[0]) < 1e-9 and abs(r @ e[1]) < 1e-9
