"""Explanations: term differences add up, leave-one-out contributions match brute force, weight cuts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecisem_core.metric.explain import term_differences, triplet_contributions, weight_cuts
from ecisem_core.metric.eci_sem import eci_sem
from ecisem_core.metric.shapley import eci_sem_contributions


def _unit_rows(rng, n, d):
    r = rng.normal(size=(n, d))
    return r / np.linalg.norm(r, axis=1, keepdims=True)


def _sources_row(name, r, c, h, rho, kappa):
    full, phi = eci_sem_contributions(r, c, h, rho, 1.0, 1.0, 1.0, kappa)
    return {"source": name, "eci_sem": full.score, "phi_c": phi["c"], "phi_h": phi["h"], "phi_rho": phi["rho"],
            "phi_div": phi["div"]}


def test_term_differences_sum_to_the_log_ratio():
    rng = np.random.default_rng(0)
    rows = []
    for name in ("a", "b"):
        n, d = 30, 8
        rows.append(_sources_row(name, _unit_rows(rng, n, d), rng.uniform(0.1, 1, n), rng.uniform(0.1, 1, n),
                                 rng.uniform(0.1, 1, n), 2.0 * d))
    table = pd.DataFrame(rows)
    diff = term_differences(table, "a", "b")
    assert list(diff["term"]) == ["phi_c", "phi_h", "phi_rho", "phi_div", "total"]
    total = diff.set_index("term").at["total", "delta"]
    assert np.isclose(total, np.log(rows[0]["eci_sem"]) - np.log(rows[1]["eci_sem"]))
    assert np.isclose(diff["delta"].iloc[:-1].sum(), total, atol=1e-12)


def test_term_differences_show_zero_residuals_when_they_differ():
    rng = np.random.default_rng(1)
    r = _unit_rows(rng, 20, 6)
    r0 = r.copy()
    r0[:5] = 0.0  # a quarter of the residuals vanish: v(∅) = log(3/4)
    ones = np.full(20, 0.7)
    table = pd.DataFrame([_sources_row("a", r, ones, ones, ones, 12.0), _sources_row("b", r0, ones, ones, ones, 12.0)])
    diff = term_differences(table, "a", "b").set_index("term")
    assert np.isclose(diff.at["base", "delta"], -np.log(0.75))
    assert np.isclose(diff["delta"].drop("total").sum(), diff.at["total", "delta"])
    with pytest.raises(KeyError):
        term_differences(table, "a", "zzz")


def test_contributions_hand_checked_example():
    # two orthogonal unit rows, w = 1, κ = 2: M = I/2, removing one leaves ½·ln 2, so each adds ½·ln 2
    got = triplet_contributions(np.eye(2), np.ones(2), 2.0)
    assert np.allclose(got, np.log(2) / 2)


@pytest.mark.parametrize("n,d", [(6, 10), (40, 5)])  # both sides of the log-det
def test_contributions_equal_brute_force_leave_one_out(n, d):
    rng = np.random.default_rng(n)
    r = _unit_rows(rng, n, d)
    w = rng.uniform(0.05, 1.0, n)
    kappa = 2.0 * d
    full = eci_sem(r, w, kappa).score
    brute = []
    for i in range(n):
        w_i = w.copy()
        w_i[i] = 0.0  # drop its term, keep the 1/N normalisation
        brute.append(full - eci_sem(r, w_i, kappa).score)
    assert np.allclose(triplet_contributions(r, w, kappa), brute, rtol=1e-9, atol=1e-12)
    assert (triplet_contributions(r, w, kappa) >= 0).all()


def test_redundant_rows_contribute_less_than_a_lone_direction():
    r = np.array([[1.0, 0, 0], [1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    got = triplet_contributions(r, np.ones(4), 6.0)
    assert got[3] > got[0] and np.allclose(got[:3], got[0])


def test_weight_cuts_name_the_term_that_lowers_w_most():
    c = np.array([0.1, 0.9, 0.9, 1.0])
    h = np.array([0.9, 0.05, 0.9, 1.0])
    rho = np.array([0.8, 0.9, 0.2, 1.0])
    cuts = weight_cuts(c, h, rho, 1.0, 1.0, 1.0)
    assert list(cuts["cut"]) == ["c", "h", "rho", "none"]
    assert np.allclose(cuts[["log_c", "log_h", "log_rho"]].sum(axis=1), np.log(c * h * rho))
    off = weight_cuts(c, h, rho, 0.0, 1.0, 1.0)  # α = 0: c no longer cuts anything
    assert off.at[0, "cut"] == "rho" and off.at[0, "log_c"] == 0.0
    assert "false negative" in cuts.at[0, "meaning"]
