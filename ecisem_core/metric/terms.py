"""Per-triplet similarities and the terms of ECI_sem (docs/METRIC.md §2.1). Vectorised over triplets.

With L2-normalised e_q, e_p, e_n:  s_qp = ⟨e_q,e_p⟩, s_qn = ⟨e_q,e_n⟩, s_pn = ⟨e_p,e_n⟩, Δ = s_qp − s_qn.
"""
from __future__ import annotations

import os

import numpy as np
from scipy.special import expit

from ecisem_core.config import RESIDUAL_EPS
from ecisem_core.metric.parallel import map_sources


def rowwise_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """⟨a_i, b_i⟩ for every row i (float64)."""
    return np.einsum("ij,ij->i", a, b, dtype=np.float64)


def similarities(matrix: np.ndarray, qi: np.ndarray, pi: np.ndarray, ni: np.ndarray,
                 chunk: int = 8192) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s_qp, s_qn, s_pn) for triplets given as row indices into an embedding matrix.

    Rows are gathered chunk by chunk into reused buffers (fresh 100k-row gathers spend most of their time in page
    faults); the dot products run in the matrix's precision and are returned as float64. The chunks are shared
    out to one worker thread per core (:func:`~ecisem_core.metric.parallel.map_sources`; the gathers and products
    release the GIL): each row's products are the same whichever thread computes them. At a million triplets on
    two cores: 2.0–2.4 s on one thread, 1.4–1.5 s on two.
    """
    m = len(qi)
    out = np.empty((3, m), dtype=np.float64)
    d = matrix.shape[1]
    per_part = chunk * max(1, -(-m // (chunk * PARTS_PER_CORE * (os.cpu_count() or 1))))
    spans = [(a, min(a + per_part, m)) for a in range(0, m, per_part)]

    def part(j: int) -> np.ndarray:
        lo, hi = spans[j]
        bufs = [np.empty((min(chunk, hi - lo), d), dtype=matrix.dtype) for _ in range(3)]
        for s in range(lo, hi, chunk):
            k = min(chunk, hi - s)
            eq, ep, en = (np.take(matrix, idx[s : s + k], axis=0, out=buf[:k]) for idx, buf in zip((qi, pi, ni), bufs))
            out[0, s : s + k] = np.einsum("ij,ij->i", eq, ep)
            out[1, s : s + k] = np.einsum("ij,ij->i", eq, en)
            out[2, s : s + k] = np.einsum("ij,ij->i", ep, en)
        return out[:, lo:hi]

    map_sources(part, len(spans))
    return out[0], out[1], out[2]


PARTS_PER_CORE = 2
"""Parts the triplets of :func:`similarities` are split into per core (each a whole number of chunks)."""


def target_consistency(delta: np.ndarray, tau: float) -> np.ndarray:
    """c = σ(Δ/τ): the target encoder's probability that the positive beats the negative. In (0, 1).

    >>> float(target_consistency(np.array([0.0]), 0.05)[0])
    0.5
    """
    return expit(np.asarray(delta, dtype=np.float64) / tau)


def semantic_locality(delta: np.ndarray, tau: float) -> np.ndarray:
    """h = exp(−max(0, Δ)/τ): 1 when the negative is as close to the query as the positive. In (0, 1].

    >>> round(float(semantic_locality(np.array([0.05]), 0.05)[0]), 6)   # e^-1
    0.367879
    """
    return np.exp(-np.maximum(0.0, np.asarray(delta, dtype=np.float64)) / tau)


NEGATIVE_EXPONENT_FLOOR: float = 1e-6
"""Terms are floored at this value before a negative exponent (x^e with e < 0)."""


def weights(c: np.ndarray, h: np.ndarray, rho: np.ndarray, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """w = c^α · h^β · ρ^γ, with x^0 = 1 (an exponent of 0 switches its term off, even where the term is 0).

    A negative exponent turns its term against the source (e.g. β < 0 prefers negatives far from the query);
    the term is then floored at :data:`NEGATIVE_EXPONENT_FLOOR`.
    """
    w = np.ones_like(np.asarray(c, dtype=np.float64))
    for term, e in ((c, alpha), (h, beta), (rho, gamma)):
        if e > 0:
            w = w * np.power(term, e)
        elif e < 0:  # a term counted against the source: floor it so a zero term gives a large, finite weight
            w = w * np.power(np.maximum(term, NEGATIVE_EXPONENT_FLOOR), e)
    return w


def fn_discount(fn_score: np.ndarray, penalty: float) -> np.ndarray:
    """The false-negative discount (1 − fn_score)^φ of each triplet's weight (docs/METRIC.md §2.1): φ = 0 leaves
    the weight as published, φ = 1 weights a triplet by the probability that its negative is a true negative, large
    φ all but removes flagged triplets. fn_score is clipped to [0, 1 − 1e-6] so no weight becomes exactly 0.

    >>> fn_discount(np.array([0.0, 0.5, 0.9]), 2.0).round(4).tolist()
    [1.0, 0.25, 0.01]
    """
    f = np.clip(np.asarray(fn_score, dtype=np.float64), 0.0, 1.0 - 1e-6)
    return np.ones_like(f) if penalty == 0 else np.power(1.0 - f, penalty)


RESIDUAL_CHUNK = 256
"""Rows per step of :func:`residual_directions`: its float64 temporaries (about ten arrays of rows × d) stay a few
MB; every row is computed on its own, so the result does not depend on the step."""


def residual_directions(eq: np.ndarray, ep: np.ndarray, en: np.ndarray, eps: float = RESIDUAL_EPS) -> np.ndarray:
    """r̂: the unit part of e_n orthogonal to span{e_q, e_p} (Gram–Schmidt), 0 where ‖r‖ < eps; float64.

        u₁ = e_q/‖e_q‖;  v = e_p − ⟨e_p,u₁⟩u₁;  u₂ = v/‖v‖ (skipped if ‖v‖ < eps)
        r  = e_n − ⟨e_n,u₁⟩u₁ − ⟨e_n,u₂⟩u₂;  r̂ = r/‖r‖

    Computed :data:`RESIDUAL_CHUNK` rows at a time.
    """
    eq, ep, en = np.broadcast_arrays(*(np.asarray(x) for x in (eq, ep, en)))
    out = np.empty(en.shape, dtype=np.float64)
    for a in range(0, out.shape[0], RESIDUAL_CHUNK):
        b = a + RESIDUAL_CHUNK
        out[a:b] = _residual_block(eq[a:b], ep[a:b], en[a:b], eps)
    return out


def _residual_block(eq: np.ndarray, ep: np.ndarray, en: np.ndarray, eps: float) -> np.ndarray:
    """:func:`residual_directions` of one block of rows."""
    eq, ep, en = (np.asarray(x, dtype=np.float64) for x in (eq, ep, en))
    nq = np.linalg.norm(eq, axis=1, keepdims=True)
    u1 = np.divide(eq, nq, out=np.zeros_like(eq), where=nq > eps)
    v = ep - rowwise_dot(ep, u1)[:, None] * u1
    nv = np.linalg.norm(v, axis=1, keepdims=True)
    u2 = np.divide(v, nv, out=np.zeros_like(v), where=nv > eps)
    r = en - rowwise_dot(en, u1)[:, None] * u1 - rowwise_dot(en, u2)[:, None] * u2
    nr = np.linalg.norm(r, axis=1, keepdims=True)
    return np.divide(r, nr, out=np.zeros_like(r), where=nr >= eps)
