"""score_sources / prepare / score_prepared: hand-checked tiny example, schema, invariants, caching."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ecisem_core.config import ScoreConfig
from ecisem_core.embed.encoders import TfidfLsaEncoder
from ecisem_core.downstream.hybrid import make_hybrid
from ecisem_core.score import SOURCE_COLUMNS, TRIPLET_COLUMNS, prepare, score_prepared, score_sources

from helpers import TableEncoder, synthetic_triplets


def test_tiny_example_by_hand(tmp_path):
    # q = e1, p = (0.8, 0.6, 0), n = (0.7, 0, √0.51): s_qp = 0.8, s_qn = 0.7, Δ = 0.1, s_pn = 0.56
    # τ = 0.05: c = σ(2), h = e^−2. Words: q "alpha beta", p "gamma delta", n "alpha epsilon";
    # IDF over passages {p, n} (D = 2): idf(alpha) = idf(epsilon) = ln 2; alpha is in q → ρ = 0.5.
    # r̂ = e3 (n minus its part in span{e1, e2}); M = w·e3e3ᵀ; κ = 2d = 6 → ECI_sem = ln(1 + 6w)/6.
    enc = TableEncoder({"alpha beta": [1, 0, 0], "gamma delta": [0.8, 0.6, 0], "alpha epsilon": [0.7, 0, 0.51 ** 0.5]})
    table = pd.DataFrame({"query": ["alpha beta"], "positive": ["gamma delta"], "negative": ["alpha epsilon"],
                          "source": ["s"]})
    res = score_sources(table, enc, ScoreConfig(bootstrap=0, stability_trials=0), cache_dir=tmp_path)
    c, h, rho = 1 / (1 + math.exp(-2)), math.exp(-2), 0.5
    w = c * h * rho
    row = res.triplets.iloc[0]
    assert (row.s_qp, row.s_qn, row.s_pn) == pytest.approx((0.8, 0.7, 0.56), abs=1e-6)
    assert (row.c, row.h, row.rho, row.w) == pytest.approx((c, h, rho, w), rel=1e-5)
    src = res.sources.iloc[0]
    assert src.eci_sem == pytest.approx(math.log1p(6 * w) / 6, rel=1e-5)
    assert src["info"] == pytest.approx(w, rel=1e-5)
    assert src.diversity == pytest.approx(math.log1p(6 * w) / (6 * w), rel=1e-5)
    assert src.eci_sem_per_dim == pytest.approx(src.eci_sem / 3)
    # classic ECI: K = 1, S_n = 0.7, Δ_max = 0.1 → ln 2 · 2·0.07/0.8
    assert src.eci_v1 == pytest.approx(math.log(2) * 2 * 0.7 * 0.1 / 0.8, rel=1e-5)
    assert src.phi_c + src.phi_h + src.phi_rho + src.phi_div == pytest.approx(math.log(src.eci_sem), rel=1e-9)


@pytest.fixture(scope="module")
def synthetic_result(tmp_path_factory):
    table = synthetic_triplets()
    prep = prepare(table, TfidfLsaEncoder(n_components=32), ScoreConfig(), cache_dir=tmp_path_factory.mktemp("c"))
    return table, prep, score_prepared(prep, ScoreConfig(bootstrap=60, stability_trials=20))


def test_schema_and_ranges(synthetic_result):
    _, _, res = synthetic_result
    s = res.sources
    assert list(s.columns[: len(SOURCE_COLUMNS)]) == SOURCE_COLUMNS
    assert list(res.triplets.columns[: len(TRIPLET_COLUMNS)]) == TRIPLET_COLUMNS
    assert set(s.source) == {"close", "far", "mixed"}
    assert (s.n == 40).all()
    assert ((s.eci_sem > 0) & (s.eci_sem <= s["info"] + 1e-12)).all()
    assert ((s.diversity > 0) & (s.diversity <= 1 + 1e-9)).all()
    assert (s.ci_low <= s.ci_high).all()
    assert ((s.stability >= 0) & (s.stability <= 1)).all()
    phi = s[["phi_c", "phi_h", "phi_rho", "phi_div"]].sum(axis=1)
    assert np.allclose(phi, np.log(s.eci_sem))
    t = res.triplets
    for col in ("c", "h", "rho", "w", "fn_score"):
        assert t[col].between(0, 1).all(), col
    p = res.pairwise
    assert p.loc["close", "far"] + p.loc["far", "close"] == pytest.approx(1.0)
    # hard (close) negatives carry more weight than unrelated ones
    assert s.set_index("source").loc["close", "eci_sem"] > s.set_index("source").loc["far", "eci_sem"]
    assert list(s["rank"]) == [1, 2, 3]


def test_row_order_does_not_change_scores(tmp_path):
    table = synthetic_triplets(30)
    cfg = ScoreConfig(sample_size=20, bootstrap=30, stability_trials=5)
    enc = TfidfLsaEncoder(n_components=24)
    a = score_sources(table, enc, cfg, cache_dir=tmp_path).sources.set_index("source").sort_index()
    shuffled = table.sample(frac=1.0, random_state=3)
    b = score_sources(shuffled, TfidfLsaEncoder(n_components=24), cfg, cache_dir=tmp_path).sources
    b = b.set_index("source").sort_index()
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)


def test_reweighting_does_not_reembed_or_resample(synthetic_result):
    table, prep, base = synthetic_result
    samples_before = dict(prep._samples)
    res = score_prepared(prep, ScoreConfig(alpha=0.0, gamma=2.0), uncertainty=False)
    assert prep._samples.keys() == samples_before.keys()
    assert res.sources["ci_low"].isna().all()          # uncertainty off → NaN, never a stale value
    changed = res.sources.set_index("source").eci_sem - base.sources.set_index("source").eci_sem
    assert (changed.abs() > 0).all()


def test_without_contributions_scores_agree_and_phi_is_nan(synthetic_result):
    _, prep, base = synthetic_result
    fast = score_prepared(prep, ScoreConfig(), uncertainty=False, contributions=False).sources.set_index("source")
    full = base.sources.set_index("source")
    assert np.allclose(fast.eci_sem, full.loc[fast.index, "eci_sem"], rtol=1e-10)
    assert fast[["phi_c", "phi_h", "phi_rho", "phi_div"]].isna().all().all()


def test_sample_size_caps_each_source(synthetic_result):
    _, prep, _ = synthetic_result
    res = score_prepared(prep, ScoreConfig(sample_size=10), uncertainty=False)
    assert (res.sources.n_sampled == 10).all()
    assert res.triplets.in_sample.sum() == 30


def test_hybrid_scores_near_the_mean_of_its_parts(synthetic_result):
    table, _, _ = synthetic_result
    hyb = make_hybrid(table, ["close", "far"])
    assert len(hyb) == 80 and set(hyb.source) == {"close+far"}
    res = score_sources(pd.concat([table, hyb]), TfidfLsaEncoder(n_components=32),
                        ScoreConfig(bootstrap=0, stability_trials=0), uncertainty=False)
    s = res.sources.set_index("source").eci_sem
    mean = (s["close"] + s["far"]) / 2
    assert s["close+far"] >= mean * (1 - 1e-9)
    assert abs(s["close+far"] - mean) <= 0.1 * mean


def test_missing_columns_is_an_input_error():
    from ecisem_core.errors import InputError

    with pytest.raises(InputError, match="lacks column"):
        score_sources(pd.DataFrame({"query": ["a"]}), TfidfLsaEncoder())


@pytest.mark.parametrize("column", ["query", "positive", "negative", "source"])
@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_text_is_an_input_error_not_another_texts_vector(tmp_path, column, missing):
    from ecisem_core.errors import InputError
    from helpers import HashEncoder

    table = pd.DataFrame({"query": ["a b", "c d", "e f"], "positive": ["p q", "r s", "t u"],
                          "negative": ["x y", "v w", "z w"], "source": ["s", "s", "t"]}, index=[10, 11, 12])
    table[column] = table[column].astype(object)
    table.loc[11, column] = missing
    with pytest.raises(InputError, match=f"1 triplet\\(s\\) have no {column} .*row 1 \\(index 11\\)"):
        prepare(table, HashEncoder(), cache_dir=tmp_path)


def test_short_ids_hash_each_distinct_text_once_and_equal_short_id():
    from ecisem_core.hashing import short_id, short_ids

    texts = pd.Series(["a b", "c", "a b", "", "c", "é"])
    assert short_ids("n", texts).tolist() == [short_id("n", t) for t in texts]
    assert short_ids("q", pd.Series([], dtype=object)).tolist() == []
