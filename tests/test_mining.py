"""Mining strategies on a tiny pool with known answers (ecisem_core.downstream.mining) and the `ecisem mine` CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.cli import main
from ecisem_core.downstream import mining
from ecisem_core.errors import InputError

# Pool of 6 passages; query i's positive is pool[i] for i < 2.
POOL = ["alpha beta", "gamma delta", "alpha gamma", "beta delta", "epsilon", "zeta eta"]
QUERIES = ["alpha", "gamma"]
POSITIVES = ["alpha beta", "gamma delta"]
# Hand-set cosines (queries × pool) and cosines to the positive.
COS = np.array([[0.90, 0.10, 0.80, 0.50, 0.30, 0.20],
                [0.10, 0.85, 0.70, 0.60, 0.40, 0.05]])
S_QP = np.array([0.90, 0.85])


def fake_dense(queries, positives):
    rows = [QUERIES.index(q) for q in queries]
    return COS[rows], S_QP[rows]


def data() -> mining.MiningInput:
    return mining.MiningInput(["q1", "q2"], QUERIES, POSITIVES, POOL)


def mined(*specs: str, k: int = 1, **kw) -> pd.DataFrame:
    return mining.mine(data(), [mining.parse_strategy(s) for s in specs], k=k, dense=fake_dense, **kw)


def negs(table: pd.DataFrame, source: str, qid: str) -> list[str]:
    return table[(table.source == source) & (table.query_id == qid)]["negative"].tolist()


def test_dense_top_k_skips_the_positive():
    t = mined("dense", k=2)
    assert negs(t, "dense", "q1") == ["alpha gamma", "beta delta"]   # 0.80, 0.50 (0.90 is the positive)
    assert negs(t, "dense", "q2") == ["alpha gamma", "beta delta"]   # 0.70, 0.60 (0.85 is the positive)
    assert t.loc[t.source == "dense", "mined_rank"].tolist() == [1, 2, 1, 2]
    assert t.loc[t.source == "dense", "mined_score"].tolist() == [0.80, 0.50, 0.70, 0.60]


def test_topk_percpos_removes_exactly_the_negatives_over_the_margin():
    # q1: 0.95 * 0.90 = 0.855 → nothing removed (0.80 < 0.855); with 0.85: 0.765 → 0.80 removed.
    assert negs(mined("dense-percpos:0.95"), "dense-percpos_0.95", "q1") == ["alpha gamma"]
    t = mined("dense-percpos:0.85", k=2)
    assert negs(t, "dense-percpos_0.85", "q1") == ["beta delta", "epsilon"]
    # q2: 0.85 * 0.85 = 0.7225 → 0.70 kept; with 0.8: 0.68 → 0.70 removed, 0.60 kept
    assert negs(t, "dense-percpos_0.85", "q2") == ["alpha gamma", "beta delta"]
    assert negs(mined("dense-percpos:0.8"), "dense-percpos_0.8", "q2") == ["beta delta"]
    # the mined rank is the rank in the plain dense ranking
    assert t.loc[(t.source == "dense-percpos_0.85") & (t.query_id == "q1"), "mined_rank"].tolist() == [2, 3]


def test_rank_range_draws_only_inside_the_range():
    t = mined("dense:2-3", k=1)
    for q, allowed in (("q1", {"beta delta", "epsilon"}), ("q2", {"beta delta", "epsilon"})):
        assert set(negs(t, "dense_2-3", q)) <= allowed
    assert set(t.loc[t.source == "dense_2-3", "mined_rank"]) <= {2.0, 3.0}


def test_bm25_ranks_by_term_overlap_and_skips_the_positive():
    t = mined("bm25")
    assert negs(t, "bm25", "q1") == ["alpha gamma"]  # the only other passage with "alpha"
    assert negs(t, "bm25", "q2") == ["alpha gamma"]  # the only other passage with "gamma"


def test_random_never_returns_the_positive_and_is_seeded():
    a = mining.random_negatives([f"q{i}" for i in range(200)], 6, [np.array([i % 6]) for i in range(200)], 3, 7)
    assert all(i % 6 not in row for i, row in enumerate(a))
    b = mining.random_negatives([f"q{i}" for i in range(200)], 6, [np.array([i % 6]) for i in range(200)], 3, 7)
    assert (a == b).all()


def test_hybrid_is_half_and_half_by_query():
    ids = [f"q{i}" for i in range(101)]
    first = mining.hybrid_split(ids, seed=3)
    assert first.sum() == 51
    a = pd.DataFrame({"query_id": ids, "query": ids, "positive": "p", "negative": "A", "source": "a"})
    b = a.assign(negative="B", source="b")
    mix = mining.mix_tables(a, b, "a+b", seed=3)
    assert len(mix) == 101 and (mix["negative"] == "A").sum() == 51 and set(mix.source) == {"a+b"}
    t = mined("dense", "random", "dense+random")
    first = dict(zip(["q1", "q2"], mining.hybrid_split(["q1", "q2"], seed=0)))
    assert sorted(first.values()) == [False, True]
    for q in ("q1", "q2"):
        assert negs(t, "dense+random", q) == negs(t, "dense" if first[q] else "random", q)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(0, 2**16))
def test_the_positive_is_never_mined(n_pool, k, seed):
    rng = np.random.default_rng(seed)
    pool = [f"p{i}" for i in range(n_pool)]
    nq = 4
    positives = [pool[int(rng.integers(n_pool))] for _ in range(nq)]
    cos = rng.random((nq, n_pool))

    def dense(qs, ps):
        rows = [int(q[1:]) for q in qs]
        return cos[rows], np.ones(len(rows))

    inp = mining.MiningInput([f"q{i}" for i in range(nq)], [f"q{i}" for i in range(nq)], positives, pool)
    specs = ["dense", "dense:1-3", "random", "dense-percpos", "dense+random"]
    t = mining.mine(inp, [mining.parse_strategy(s) for s in specs], k=k, dense=dense, seed=seed)
    assert not (t["negative"] == t["positive"]).any()
    assert (t.groupby(["source", "query_id"]).size() <= k).all()
    assert not t.duplicated(["source", "query_id", "negative"]).any()


def test_dense_top_k_matches_sentence_transformers_semantic_search():
    import torch
    from sentence_transformers.util import semantic_search

    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 16)).astype(np.float32)
    d = rng.normal(size=(300, 16)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    s = q.astype(np.float64) @ d.T.astype(np.float64)
    ours = mining.rank_rows(mining.masked(s, [np.array([], np.int64)] * 20, decimals=12), 10)
    theirs = semantic_search(torch.from_numpy(q), torch.from_numpy(d), top_k=10)
    assert ours.tolist() == [[h["corpus_id"] for h in hits] for hits in theirs]


@pytest.mark.parametrize("spec, message", [
    ("bm26", "unknown mining strategy"), ("dense:50-10", "1 <= LO <= HI"), ("dense-percpos:1.5", "(0, 1]"),
    ("bm25+bm25", "two different"), ("bm25+dense+random", "two different"),
])
def test_bad_strategy_specs(spec, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        mining.parse_strategy(spec)


def test_cli_mine_writes_a_file_score_reads(tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("query_text\tgold_passage\n" + "".join(f"{q}\t{p}\n" for q, p in zip(QUERIES, POSITIVES)))
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(POOL) + "\n")
    out = tmp_path / "mined.jsonl"
    assert main(["mine", str(pairs), "--pool", str(pool), "--strategies", "bm25", "random", "bm25+random",
                 "--out", str(out), "--quiet"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["source"] for r in rows} == {"bm25", "random", "bm25+random"}
    assert all(r["negative"] != r["positive"] for r in rows)
    from ecisem_core.io.load import read_triplets

    loaded = read_triplets([str(out)]).triplets
    assert sorted(loaded["source"].unique()) == ["bm25", "bm25+random", "random"]
    assert main(["mine", str(pairs), "--pool", str(pool), "--strategies", "nope", "--out", str(out)]) == 2
    assert "unknown mining strategy" in capsys.readouterr().err


def test_cli_mine_needs_a_pool_for_triplet_input(tmp_path, capsys):
    trip = tmp_path / "t.jsonl"
    trip.write_text(json.dumps({"query": "a", "positive": "b", "negative": "c"}) + "\n")
    assert main(["mine", str(trip), "--strategies", "random", "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "needs --pool" in capsys.readouterr().err
