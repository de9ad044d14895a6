"""Calibration on synthetic downstream results: it recovers a known best setting, and the agreement it reports is
the leave-one-source-out one."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecisem_core.downstream.calibrate import (
    CalibrationGrid,
    best_setting,
    calibrate,
    distance_to,
    held_out_position,
    kendall_rows,
    save_calibration,
    settings_of,
    spearman_rows,
)
from ecisem_core.config import ScoreConfig
from ecisem_core.downstream.agreement import rank_correlations

N_SOURCES = 14
TRUE = {"tau": 0.1, "alpha": 2.0, "beta": 0.0, "gamma": -1.0, "kappa": 8.0}  # γ < 0: a sign the grid must reach
GRID = CalibrationGrid()  # κ = factor · dim; with dim = 1 the κ values are the factors (0.5, 2, 8)


def _features(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(N_SOURCES, 5)), columns=["t", "a", "b", "g", "k"],
                        index=[f"src{i:02d}" for i in range(N_SOURCES)])


def _score_fn(features: pd.DataFrame):
    """A synthetic ECI_sem: linear in (ln τ, α, β, γ, ln κ) with per-source coefficients, so settings order the
    sources differently."""
    def fn(cfg: ScoreConfig) -> pd.Series:
        kappa = cfg.kappa if cfg.kappa is not None else 2.0
        return (features["t"] * math.log(cfg.tau) + features["a"] * cfg.alpha + features["b"] * cfg.beta
                + features["g"] * cfg.gamma + features["k"] * math.log(kappa))
    return fn


def test_recovers_known_best_setting(tmp_path: Path) -> None:
    feats = _features()
    fn = _score_fn(feats)
    truth = ScoreConfig(**TRUE)
    downstream = fn(truth) * 0.01 + 0.3  # any increasing map of the true score: nDCG-like values
    # the true setting is the unique grid point with perfect agreement (checked, not assumed)
    configs = GRID.configs(ScoreConfig(), dim=1)
    perfect = [c for c in configs if rank_correlations(fn(c).to_numpy(), downstream.to_numpy())[0] == pytest.approx(1)]
    assert [settings_of(c, 1) for c in perfect] == [TRUE]

    result = calibrate(fn, downstream, grid=GRID, dim=1, n_seeds=3)
    assert result.ok
    assert result.settings == TRUE
    assert result.in_sample_kendall == pytest.approx(1.0)
    assert result.n_sources == N_SOURCES and result.n_seeds == 3 and result.grid_size == len(configs)
    # each held-out source was ranked by a setting chosen without it: with one source fewer, other settings also
    # fit perfectly, so some held-out positions are off and the out-of-sample agreement is below the in-sample 1
    assert len(result.folds) == N_SOURCES
    assert 0.6 < result.loo_kendall <= result.in_sample_kendall
    assert result.folds["fit_kendall"].tolist() == pytest.approx([1.0] * N_SOURCES)
    settings = result.folds[list(TRUE)].to_dict("records")
    assert sum(s == TRUE for s in settings) >= N_SOURCES // 2

    path = tmp_path / "calibrated_config.json"
    save_calibration(result, path)
    loaded = ScoreConfig.load(path)
    assert settings_of(loaded, 1) == TRUE
    payload = json.loads(path.read_text())
    assert payload["calibration"]["rests_on"] == {"sources": N_SOURCES, "seeds": 3, "grid_settings": len(configs)}
    assert payload["calibration"]["agreement"]["leave_one_out"]["kendall_tau"] == pytest.approx(result.loo_kendall,
                                                                                                abs=1e-4)


def test_reported_agreement_is_leave_one_out_not_in_sample() -> None:
    """Downstream values unrelated to the scores: the search still finds a setting that fits in-sample, but the
    leave-one-out agreement, which is what is reported first, shows there is nothing to predict."""
    names = [f"src{i:02d}" for i in range(N_SOURCES)]

    def fn(cfg: ScoreConfig) -> pd.Series:  # every setting orders the sources at random
        key = hash((cfg.tau, cfg.alpha, cfg.beta, cfg.gamma, cfg.kappa)) % 2**32
        return pd.Series(np.random.default_rng(key).normal(size=N_SOURCES), index=names)

    downstream = pd.Series(np.random.default_rng(0).normal(size=N_SOURCES), index=names)
    result = calibrate(fn, downstream, grid=GRID, dim=1)
    assert result.in_sample_kendall > 0.5  # the best of 576 random orderings fits well by chance
    assert result.loo_kendall < 0.3  # but predicts nothing
    summary = result.summary()["agreement"]
    assert summary["leave_one_out"]["kendall_tau"] == pytest.approx(result.loo_kendall, abs=1e-4)
    assert "out-of-sample" in summary["leave_one_out"]["note"]
    assert "optimistic" in summary["in_sample"]["note"]
    # recompute the out-of-sample agreement from the folds
    folds = result.folds.set_index("held_out")
    tau, _ = rank_correlations(-folds["predicted_position"].to_numpy(), downstream.loc[folds.index].to_numpy())
    assert result.loo_kendall == pytest.approx(tau)


def test_held_out_source_never_informs_its_own_prediction() -> None:
    feats = _features(seed=3)
    fn = _score_fn(feats)
    downstream = fn(ScoreConfig(**TRUE)) + np.random.default_rng(1).normal(scale=0.5, size=N_SOURCES)
    first = calibrate(fn, downstream, grid=GRID, dim=1).folds.set_index("held_out")
    for source in ("src00", "src05"):
        changed = downstream.copy()
        changed[source] = -100.0 if changed[source] > 0 else 100.0  # move it to the other end
        fold = calibrate(fn, changed, grid=GRID, dim=1).folds.set_index("held_out").loc[source]
        cols = ["tau", "alpha", "beta", "gamma", "kappa", "predicted_position", "fit_kendall"]
        assert fold[cols].to_dict() == first.loc[source, cols].to_dict()


def test_too_few_sources_is_not_calibrated(tmp_path: Path) -> None:
    feats = _features().iloc[:2]
    result = calibrate(_score_fn(feats), pd.Series([0.2, 0.3], index=feats.index), grid=GRID, dim=1)
    assert not result.ok and "at least 3" in result.reason
    with pytest.raises(ValueError):
        save_calibration(result, tmp_path / "x.json")


def test_tie_break_prefers_settings_closest_to_start() -> None:
    scores = pd.DataFrame({"a": [1.0, 1.0, 3.0], "b": [2.0, 2.0, 2.0], "c": [3.0, 3.0, 1.0]})
    y = pd.Series({"a": 0.1, "b": 0.2, "c": 0.3})
    assert best_setting(scores, y, ["a", "b", "c"], np.array([2.0, 0.5, 0.0]))[0] == 1
    assert best_setting(scores, y, ["a", "b", "c"], np.array([0.0, 0.0, 0.0]))[0] == 0


def test_vectorised_correlations_match_scipy() -> None:
    from scipy.stats import kendalltau, spearmanr

    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(30, 9)).astype(float)  # many ties
    y = rng.integers(0, 5, size=9).astype(float)
    x[0] = 1.0  # constant row → NaN
    taus, rhos = kendall_rows(x, y), spearman_rows(x, y)
    assert np.isnan(taus[0]) and np.isnan(rhos[0])
    for row, t, r in zip(x[1:], taus[1:], rhos[1:]):
        if np.ptp(row) > 0:
            assert t == pytest.approx(kendalltau(row, y).statistic)
            assert r == pytest.approx(spearmanr(row, y).statistic)


def test_helpers() -> None:
    a = {"tau": 0.05, "alpha": 1.0, "beta": 1.0, "gamma": 1.0, "kappa": 768.0}
    b = {"tau": 0.1, "alpha": 0.0, "beta": 1.0, "gamma": 2.0, "kappa": 1536.0}
    assert distance_to(a, b) == pytest.approx(math.log(2) + 1 + 1 + math.log(2))
    assert held_out_position(pd.Series({"x": 3.0, "y": 1.0, "z": 3.0}), "y") == 3.0
    assert held_out_position(pd.Series({"x": 3.0, "y": 1.0, "z": 3.0}), "x") == 1.5
    assert settings_of(ScoreConfig(), 384)["kappa"] == 768.0
    assert len(CalibrationGrid().configs(ScoreConfig(), None)) == CalibrationGrid().size // 3


def test_fast_score_function_matches_score_prepared(tmp_path: Path) -> None:
    from helpers import synthetic_triplets

    from ecisem_core.downstream.calibrate import prepared_score_function
    from ecisem_core.score import prepare, score_prepared

    prep = prepare(synthetic_triplets(n_queries=30), "tfidf", ScoreConfig(), cache_dir=tmp_path)
    fast = prepared_score_function(prep)
    for cfg in (ScoreConfig(), ScoreConfig(tau=0.1, alpha=2.0, beta=0.0, gamma=0.5, kappa=17.0),
                ScoreConfig(alpha=0.0, beta=0.0, gamma=0.0)):
        slow = score_prepared(prep, cfg, uncertainty=False).sources.set_index("source")["eci_sem"]
        assert fast(cfg).loc[slow.index].to_numpy() == pytest.approx(slow.to_numpy(), rel=1e-12)
