"""Tests of ecisem_core.curation.active: the review queue's selection (uncertainty sampling mixed with top-scored
and random items, the cold start) and the offline learning loop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.curation.active import (
    COLD_STARTS,
    item_keys,
    judged_keys,
    next_items,
    simulate_queue,
)
from ecisem_core.errors import InputError


def items(n: int, fn_score: np.ndarray | None = None) -> pd.DataFrame:
    return pd.DataFrame({
        "query_id": [f"q{i}" for i in range(n)],
        "negative_id": [f"n{i}" for i in range(n)],
        "fn_score": np.linspace(0.9, 0.1, n) if fn_score is None else fn_score,
    })


P4 = np.array([0.1, 0.48, 0.9, 0.55])


def test_pure_uncertainty_takes_the_probabilities_closest_to_one_half():
    out = next_items(items(4), P4, set(), k=2, mix=0.0, explore=0.0)
    assert out["queue_p"].tolist() == [0.48, 0.55]
    assert out.index.tolist() == [1, 3] and (out["queue_reason"] == "uncertain").all()


def test_mix_takes_the_top_scored_then_the_uncertain():
    out = next_items(items(4), P4, set(), k=2, mix=0.5, explore=0.0)
    assert out["queue_p"].tolist() == [0.9, 0.48] and out["queue_reason"].tolist() == ["top", "uncertain"]
    out = next_items(items(4), P4, set(), k=4, mix=0.25, explore=0.25)
    assert out["queue_reason"].tolist() == ["top", "random", "uncertain", "uncertain"]
    assert out["queue_p"].iloc[0] == 0.9 and sorted(out["queue_p"]) == sorted(P4)


def test_judged_items_are_never_offered_again():
    t = items(4)
    judged = {"q1\x00n1", "q3\x00n3"}
    out = next_items(t, P4, judged, k=3, mix=0.0, explore=0.0)
    assert sorted(out["queue_p"]) == [0.1, 0.9]  # the two that are left (k = 3 asks for more)
    assert judged_keys(pd.DataFrame({"query_id": ["q1"], "negative_id": ["n1"]})) == {"q1\x00n1"}
    assert judged_keys(pd.DataFrame(columns=["query_id", "negative_id"])) == set()


def test_rows_sharing_an_item_are_one_item():
    t = pd.concat([items(3), items(3)], ignore_index=True).assign(source=["a"] * 3 + ["b"] * 3)
    out = next_items(t, np.full(6, 0.5), set(), k=10)
    assert sorted(out.index) == [0, 1, 2] and (out["source"] == "a").all()
    assert len(set(item_keys(out))) == 3


def test_the_same_seed_gives_the_same_batch_and_ties_follow_the_seed():
    t = items(40)
    p = np.full(40, 0.5)  # all tied
    a = next_items(t, p, set(), k=5, seed=3)
    assert a.index.tolist() == next_items(t, p, set(), k=5, seed=3).index.tolist()
    others = {tuple(next_items(t, p, set(), k=5, seed=s).index) for s in range(5)}
    assert len(others) > 1
    cold = next_items(t, None, set(), k=6, seed=1)
    assert cold.index.tolist() == next_items(t, None, set(), k=6, seed=1).index.tolist()


def test_cold_start_takes_the_top_of_fn_score_and_spreads_the_rest():
    t = items(10)  # fn_score falls with the row number
    out = next_items(t, None, set(), k=4, cold_top=0.5)
    assert out["queue_reason"].tolist() == ["cold-top", "cold-top", "cold-spread", "cold-spread"]
    assert out.index[:2].tolist() == [0, 1]
    assert 2 <= out.index[2] <= 5 and 6 <= out.index[3] <= 9  # one from each half of the rest
    assert out["queue_p"].isna().all()
    assert next_items(t, None, set(), k=3, cold_start="top").index.tolist() == [0, 1, 2]
    assert set(next_items(t, None, set(), k=3, cold_start="random")["queue_reason"]) == {"cold-random"}


def test_bad_arguments_are_input_errors():
    t = items(4)
    with pytest.raises(InputError, match="probabilities for"):
        next_items(t, np.zeros(3), set())
    with pytest.raises(InputError, match="shares"):
        next_items(t, P4, set(), mix=0.8, explore=0.5)
    with pytest.raises(InputError, match="cold start"):
        next_items(t, None, set(), cold_start="best")
    with pytest.raises(InputError, match="lacks column"):
        next_items(t.drop(columns="negative_id"), P4, set())
    with pytest.raises(InputError, match="one row per item"):
        simulate_queue(pd.concat([t, t]), np.zeros(8))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 30),
    k=st.integers(0, 12),
    mix=st.floats(0, 0.5),
    explore=st.floats(0, 0.5),
    seed=st.integers(0, 5),
    cold=st.sampled_from((None, *COLD_STARTS)),
    data=st.data(),
)
def test_a_batch_is_k_distinct_unjudged_items_or_all_that_remain(n, k, mix, explore, seed, cold, data):
    p = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    judged_rows = data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else set()
    t = items(n, fn_score=np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))))
    judged = set(item_keys(t.iloc[sorted(judged_rows)]).tolist()) if n else set()
    out = next_items(t, None if cold else p, judged, k=k, mix=mix, explore=explore, seed=seed,
                     cold_start=cold or "top+stratified")
    keys = item_keys(out).tolist() if len(out) else []
    assert len(out) == min(k, n - len(judged))
    assert len(set(keys)) == len(keys) and not set(keys) & judged


def synthetic(n_queries: int = 50, per_query: int = 6, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Noisy but learnable: false negatives sit close to the positive (s_pn) and to the query (small margin)."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for q in range(n_queries):
        s_qp = rng.uniform(0.5, 0.8)
        for j in range(per_query):
            fn = rng.random() < 0.3
            rows.append({"query_id": f"q{q}", "negative_id": f"n{q}-{j}", "query": f"question {q}",
                         "positive": f"answer{q} text", "negative": f"passage {q} {j}", "source": "syn",
                         "s_qp": s_qp, "s_qn": s_qp - (rng.normal(0.0, 0.05) if fn else rng.normal(0.12, 0.05)),
                         "s_pn": rng.normal(0.8, 0.06) if fn else rng.normal(0.6, 0.06)})
            y.append(1.0 if fn else 0.0)
    return pd.DataFrame(rows), np.array(y)


def test_the_learning_loop_improves_the_scorer_and_never_offers_held_out_items():
    t, y = synthetic()
    held = t["query_id"].isin([f"q{i}" for i in range(15)]).to_numpy()
    curve = simulate_queue(t, y, order="uncertainty", checkpoints=(10, 30, 90), holdout=held, batch_size=10,
                           n_min=3, seed=0)
    assert curve["n_verdicts"].tolist() == [10, 30, 90]
    assert (curve["n_fn"] + curve["n_tn"] == curve["n_verdicts"]).all()
    auc = curve["auc_holdout"].to_numpy()
    assert np.isfinite(auc).all() and auc[-1] > 0.9 and auc[-1] >= auc[0]
    assert np.isfinite(curve["cv_auc"].iloc[-1])
    for order in ("random", "top"):
        c = simulate_queue(t, y, order=order, checkpoints=(90,), holdout=held, n_min=3)
        assert c["auc_holdout"].iloc[0] > 0.8
    everything = simulate_queue(t, y, order="uncertainty", checkpoints=(1000,), holdout=held, batch_size=100, n_min=3)
    assert everything["n_verdicts"].tolist() == [int((~held).sum())]  # the held-out items were never offered
    # more checkpoints than items: stops when every item outside the held-out set is judged
    small = simulate_queue(t.iloc[:24], y[:24], order="uncertainty", checkpoints=(10, 500), n_min=3)
    assert small["n_verdicts"].tolist() == [10, 24] and np.isnan(small["auc_remaining"].iloc[-1])
