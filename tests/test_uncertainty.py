"""Bootstrap intervals, P(A > B) and rank stability."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from ecisem_core.metric.eci_sem import eci_sem
from ecisem_core.metric.uncertainty import (
    SourceSample, _score_weighted, bootstrap_scores, centre, intervals, large_rows, pairwise_prob, rank_stability,
    ranks_desc,
)


def sample(name, n, d, seed, scale):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(n, d))
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    delta = rng.uniform(0, scale, n)
    return SourceSample(name, r, delta, rng.uniform(0.3, 1, n), np.arange(n) % (n // 2))


def test_float32_gram_matches_float64_score():
    s = sample("a", 300, 64, 0, 0.2)
    w = np.random.default_rng(1).uniform(0, 0.2, 300)
    exact = eci_sem(s.residuals, w, 128.0).score
    assert _score_weighted(large_rows(s.residuals), w, None, 128.0) == pytest.approx(exact, rel=1e-5)


def test_multiplicities_equal_repeated_rows():
    s = sample("a", 50, 8, 2, 0.2)
    w = np.random.default_rng(3).uniform(0, 1, 50)
    mult = np.random.default_rng(4).integers(0, 3, 50).astype(float)
    rep = np.repeat(np.arange(50), mult.astype(int))
    direct = eci_sem(s.residuals[rep], w[rep], 16.0).score
    assert _score_weighted(large_rows(s.residuals), w, mult, 16.0) == pytest.approx(direct, rel=1e-5)


def test_rows_flushed_once_give_the_values_of_a_flush_per_draw():
    """Real residuals hold entries near 1e-33 in every row: large_rows zeroes them once, and a draw (multiplicities,
    weights down to 1e-9) must give bit for bit the value of the plain path (scale, flush, Gram, log-det)."""
    from ecisem_core.metric.logdet import coding_rate, weighted_gram

    rng = np.random.default_rng(5)
    r = rng.normal(size=(500, 40)).astype(np.float32)
    r[np.arange(500), rng.integers(0, 40, 500)] = 6e-34
    r[:5, 0] = 3e-18  # kept by the one-off flush, flushed by a draw whose scale is small enough
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    rows = large_rows(r)
    assert not (np.abs(rows.flushed[rows.flushed != 0]) < 1.1e-19).any() and (rows.flushed[:5, 0] != 0).all()
    for w in (np.exp(rng.uniform(np.log(1e-9), 0.0, 500)), np.full(500, 0.5)):
        for mult in (None, rng.integers(0, 3, 500).astype(float)):
            m = np.ones(500) if mult is None else mult
            keep = m > 0
            plain = coding_rate(weighted_gram(r[keep], m[keep] * w[keep], m.sum()), 80.0)
            assert _score_weighted(rows, w, mult, 80.0) == plain
    # multiplicities that are no counts (a scale above 1): the rows as sampled, flushed per draw, as before
    odd = np.where(np.arange(500) % 2 == 0, 3.0, -2.99)  # Σ m = 2.5: the largest scale is 0.9·3/2.5 > 1
    keep = odd > 0
    w = np.full(500, 0.9)
    r[:, 1] = 1.06e-19  # below the bound, above it once scaled by √1.08: kept by the plain path
    plain = coding_rate(weighted_gram(r[keep], odd[keep] * w[keep], odd.sum()), 80.0)
    assert _score_weighted(large_rows(r), w, odd, 80.0) == plain


def test_bootstrap_interval_contains_estimate_and_orders_sources():
    a, b = sample("a", 200, 16, 0, 0.1), sample("b", 200, 16, 1, 0.1)
    wa, wb = np.full(200, 0.3), np.full(200, 0.1)
    raw = bootstrap_scores([a, b], [wa, wb], 32.0, 100, seed=0)
    est = [eci_sem(a.residuals, wa, 32.0).score, eci_sem(b.residuals, wb, 32.0).score]
    # with constant weights all variation is diversity: repeated draws sit below the estimate (the bias centring
    # removes); after centring the interval contains it and keeps the raw spread
    assert (np.nanmedian(raw, axis=0) < est).all()
    boot = centre(raw, est)
    lo, hi = intervals(boot)
    assert np.allclose(hi - lo, np.subtract(*intervals(raw)[::-1]))
    assert (lo <= est).all() and (est <= hi).all()
    p = pairwise_prob(boot, ["a", "b"])
    assert p.loc["a", "b"] == 1.0 and p.loc["b", "a"] == 0.0
    assert np.isnan(p.loc["a", "a"])


def test_bootstrap_is_seeded():
    a = sample("a", 60, 8, 0, 0.1)
    w = [np.full(60, 0.2)]
    assert np.array_equal(bootstrap_scores([a], w, 8.0, 10, 5), bootstrap_scores([a], w, 8.0, 10, 5))


def test_rank_stability_is_one_for_well_separated_sources():
    a, b = sample("a", 100, 8, 0, 0.02), sample("b", 100, 8, 1, 0.4)
    base = np.array([1.0, 0.5])
    st = rank_stability([a, b], 0.05, 1, 1, 1, 16.0, base, trials=10, seed=0)
    assert st.tolist() == [1.0, 1.0]
    assert ranks_desc(np.array([0.1, np.nan, 0.3])).tolist() == [2, 3, 1]


def _one_at_a_time(samples, w, kappa, n_boot, seed):
    """The reference: each source's bootstrap draws through _score_weighted (the N ≥ d path), same draws."""
    present = np.unique(np.concatenate([s.query_codes for s in samples]))
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, present.size, present.size), minlength=present.size)
                       for _ in range(n_boot)]).astype(np.float64)
    out = np.full((n_boot, len(samples)), np.nan)
    for j, s in enumerate(samples):
        mult = counts[:, np.searchsorted(present, s.query_codes)]
        out[:, j] = [_score_weighted(large_rows(s.residuals), w[j], mult[b], kappa) for b in range(n_boot)]
    return out


def test_row_side_batched_bootstrap_equals_one_source_at_a_time():
    """Sources with N < d are done together (row Gram matrices re-scaled per draw): same numbers as one at a
    time, for sources of different and equal N, one-triplet sources included, and with N ≥ d mixed in."""
    samples = [sample("a", 6, 16, 0, 0.2), sample("b", 6, 16, 1, 0.2), sample("c", 10, 16, 2, 0.2),
               sample("big", 40, 16, 3, 0.2)]
    one = sample("one", 2, 16, 4, 0.2)
    samples.append(SourceSample("single", one.residuals[:1], one.delta[:1], one.rho[:1], np.array([7])))
    w = [np.random.default_rng(10 + j).uniform(0.05, 1, len(s.delta)) for j, s in enumerate(samples)]
    got = bootstrap_scores(samples, w, 24.0, 30, seed=3)
    want = _one_at_a_time(samples, w, 24.0, 30, seed=3)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[:, -1]).any()  # draws without query 7
    assert np.allclose(got, want, rtol=1e-5, atol=1e-9, equal_nan=True)


def test_row_side_batched_rank_stability_equals_one_source_at_a_time(monkeypatch):
    import ecisem_core.metric.uncertainty as u

    samples = [sample(f"s{j}", 4 + (j % 2) * 2, 16, j, 0.05 + 0.1 * j) for j in range(6)]
    base = np.array([eci_sem(s.residuals, np.ones(len(s.delta)), 24.0).score for s in samples])
    got = rank_stability(samples, 0.05, 1, 1, 1, 24.0, base, trials=12, seed=0)
    monkeypatch.setattr(u, "row_side_groups", lambda ss: ([], list(range(len(ss)))))  # force one at a time
    want = rank_stability(samples, 0.05, 1, 1, 1, 24.0, base, trials=12, seed=0)
    assert np.array_equal(got, want)


def test_pairwise_prob_equals_the_pair_by_pair_count_and_keeps_the_top_sources():
    rng = np.random.default_rng(0)
    boot = rng.normal(size=(50, 5))
    boot[rng.random((50, 5)) < 0.2] = np.nan
    names = list("abcde")
    p = pairwise_prob(boot, names)
    for i in range(5):
        for j in range(5):
            if i == j:
                assert np.isnan(p.iloc[i, j])
                continue
            ok = ~np.isnan(boot[:, i]) & ~np.isnan(boot[:, j])
            assert p.iloc[i, j] == pytest.approx((boot[ok, i] > boot[ok, j]).mean())
    top = pairwise_prob(boot, names, estimate=np.array([0.1, 0.5, 0.3, np.nan, 0.4]), limit=3)
    assert list(top.index) == ["b", "c", "e"] and list(top.columns) == ["b", "c", "e"]
    assert top.loc["b", "e"] == p.loc["b", "e"]


@pytest.mark.parametrize("q", [2.5, 50.0, 97.5, 0.0, 100.0])
def test_nan_percentile_equals_numpy(q):
    from ecisem_core.metric.uncertainty import nan_percentile

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 25))
    x[rng.random((40, 25)) < 0.3] = np.nan
    x[:, 3] = np.nan          # a column with no draw
    x[1:, 4] = np.nan         # a column with one draw
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanpercentile(x, q, axis=0)
    assert np.allclose(nan_percentile(x, q), want, equal_nan=True, rtol=0, atol=1e-12)


def test_map_sources_keeps_the_order_over_blocks():
    from ecisem_core.metric.parallel import map_sources

    assert map_sources(lambda j: j * j, 1001) == [j * j for j in range(1001)]
    assert map_sources(lambda j: j, 0) == [] and map_sources(lambda j: j, 1) == [0]


def test_nan_percentile_without_draws_is_nan():
    from ecisem_core.metric.uncertainty import nan_percentile

    assert np.isnan(nan_percentile(np.zeros((0, 3)), 50.0)).all() and nan_percentile(np.zeros((0, 3)), 50).shape == (3,)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_single_threaded_blas_holds_until_the_last_thread_leaves():
    """Two threads inside at once (the dashboard's slider path and a background job): the first to leave must
    not give the other threaded BLAS back, and a thread other than the first may restore the limits. Each new
    thread must get the limit too (threadpoolctl's "controlling thread" silently ignored every thread but the
    first, so the server's bootstrap ran with threaded BLAS on every worker)."""
    from ecisem_core.metric.parallel import single_threaded_blas as limit

    before = _blas_threads()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    seen: dict[str, list[int]] = {}
    a_in, a_out = threading.Event(), threading.Event()
    b_in = threading.Event()

    def a() -> None:
        with limit:
            seen["a"] = _blas_threads()
            a_in.set()
            b_in.wait(5)
        seen["a left, b inside"] = _blas_threads()
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with limit:
            seen["b"] = _blas_threads()
            b_in.set()
            a_out.wait(5)
        seen["b left"] = _blas_threads()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    ones = [1] * len(before)
    assert seen["a"] == seen["b"] == seen["a left, b inside"] == ones
    assert seen["b left"] == before == _blas_threads()
    for _ in range(3):  # every later thread gets the limit as well
        t = threading.Thread(target=lambda: limit.__enter__() and seen.__setitem__("later", _blas_threads()))
        t.start()
        t.join(5)
        assert seen.pop("later") == ones
        limit.__exit__(None, None, None)
        assert _blas_threads() == before


def test_each_row_side_groups_grams_are_formed_once_and_dropped_after_its_last_part(monkeypatch):
    """The draws of a group are split into parts on the worker threads; the group's row Gram matrices are formed
    by its first part only and not kept once its last part is done (memory: only a few groups at a time). The
    values do not depend on the split."""
    import ecisem_core.metric.uncertainty as u

    samples = [sample("a", 6, 16, 0, 0.2), sample("b", 6, 16, 1, 0.2), sample("c", 10, 16, 2, 0.2)]
    w = [np.ones(len(s.delta)) for s in samples]
    formed, held = [], []
    real_group_grams, real_release = u.group_grams, u.GroupGrams.release

    def counting(ss, js):
        formed.append(tuple(js))
        return real_group_grams(ss, js)

    def release(self, i):
        real_release(self, i)
        held.append(len(self._grams))

    monkeypatch.setattr(u, "group_grams", counting)
    monkeypatch.setattr(u.GroupGrams, "release", release)
    got = bootstrap_scores(samples, w, 24.0, 40, seed=1)
    assert sorted(formed) == [(0, 1), (2,)]  # two groups (N = 6 and N = 10), each formed once
    assert held[-1] == 0  # nothing kept at the end
    monkeypatch.setattr(u, "PARTS_PER_CORE", 1)
    formed.clear()
    assert np.array_equal(bootstrap_scores(samples, w, 24.0, 40, seed=1), got, equal_nan=True)


def test_bootstrap_and_stability_with_a_negative_exponent_use_float64_and_hold_the_estimate():
    """β < 0 gives weights up to 10¹² (h floored at 1e-6, to the power −2): the float32 path broke (LinAlgError,
    and with it the dashboard's leaderboard). Above FLOAT32_MAX_WEIGHT the log-dets are float64 QR: finite, equal
    to the float64 reference, and the interval holds the point estimate — on the row side and the large side."""
    import ecisem_core.metric.uncertainty as u
    from ecisem_core.metric.logdet import coding_rate, weighted_gram

    rng = np.random.default_rng(2)
    samples = [sample("small", 12, 16, 0, 0.2), sample("large", 40, 16, 1, 0.2)]
    w = [10.0 ** rng.uniform(0, 12, len(s.delta)) for s in samples]
    boot = bootstrap_scores(samples, w, 24.0, 20, seed=0)
    assert np.isfinite(boot).all()
    present = np.unique(np.concatenate([s.query_codes for s in samples]))
    counts = np.bincount(np.random.default_rng(0).integers(0, present.size, present.size), minlength=present.size)
    for j, s in enumerate(samples):
        m = counts[np.searchsorted(present, s.query_codes)].astype(np.float64)
        keep = m > 0
        want = coding_rate(weighted_gram(s.residuals[keep], (m * w[j])[keep], m.sum()), 24.0)  # float64
        assert boot[0, j] == pytest.approx(want, rel=1e-8)
    estimate = np.array([coding_rate(weighted_gram(s.residuals, w[j]), 24.0) for j, s in enumerate(samples)])
    lo, hi = intervals(centre(boot, estimate))
    assert (lo <= estimate).all() and (estimate <= hi).all()
    stab = rank_stability(samples, 0.05, 1.0, -2.0, 1.0, 24.0, estimate, trials=8, seed=0)
    assert np.isfinite(stab).all()
    assert u.FLOAT32_MAX_WEIGHT == 1.0
