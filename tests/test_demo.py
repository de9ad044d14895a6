"""The bundled demo: the build step reproduces the shipped files; the cache seeding; the planted false negatives."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ecisem_core import demo
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes
from ecisem_core.embed.precomputed import read_embeddings

BASE_SOURCES = ("llm", "bm25", "dense", "random")


def shipped_vectors(texts: list[str]) -> np.ndarray:
    hashes, matrix = read_embeddings(demo.EMBEDDINGS_PATH)
    index = {h: i for i, h in enumerate(hashes)}
    return matrix[[index[h] for h in text_hashes(texts)]]


@pytest.fixture(scope="module")
def queries():
    return demo.read_text()


@pytest.fixture(scope="module")
def shipped() -> pd.DataFrame:
    return pd.read_json(demo.TRIPLETS_PATH, lines=True, dtype={"query_id": str, "negative_id": str})


@pytest.fixture(scope="module")
def built_from_shipped_vectors(queries):
    pool = demo.build_pool(queries)
    return demo.build(vectors=shipped_vectors([q.query for q in queries] + pool.texts))


# ----------------------------------------------------------------------------------------------- the text


def test_text_meets_the_issue(queries):
    assert len(queries) >= 120
    assert len({q.topic for q in queries}) >= 8
    assert all(len(q.llm_negatives) >= 2 for q in queries)
    assert sum(len(q.false_negatives) for q in queries) >= 40


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    (json.dumps({"query_id": "x"}), "expected an object with keys"),
    (json.dumps({"query_id": "x", "topic": "t", "query": "q", "positive": "p", "llm_negatives": ["a"],
                 "false_negatives": [], "distractors": ["d", "e"]}), "llm_negatives must be a list of 2–3"),
    (json.dumps({"query_id": "x", "topic": "t", "query": " ", "positive": "p", "llm_negatives": ["a", "b"],
                 "false_negatives": [], "distractors": ["d", "e"]}), "query must be a non-empty string"),
])
def test_bad_text_names_file_and_line(tmp_path, line, problem):
    good = {"query_id": "a", "topic": "t", "query": "q", "positive": "p0", "llm_negatives": ["a0", "b0"],
            "false_negatives": ["f0"], "distractors": ["d0", "e0"]}
    path = tmp_path / "topic.jsonl"
    path.write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        demo.read_text(tmp_path)
    assert err.value.line == 2 and err.value.path == str(path)
    assert problem in str(err.value)


def test_a_passage_used_twice_is_refused(tmp_path):
    rec = {"query_id": "a", "topic": "t", "query": "q", "positive": "p0", "llm_negatives": ["a0", "b0"],
           "false_negatives": [], "distractors": ["d0", "p0"]}
    (tmp_path / "t.jsonl").write_text(json.dumps(rec) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="passage already used"):
        demo.read_text(tmp_path)


# ----------------------------------------------------------------------------------------------- mining helpers


def test_top_k_breaks_rounded_ties_by_pool_order_and_skips_the_positive():
    scores = np.array([[0.5, 0.9, 0.50001, 0.49999, 0.1],
                       [0.2, 0.2, 0.2, 0.2, 0.2]])
    got = demo.top_k_excluding(scores, np.array([1, 0]), 3)
    assert got.tolist() == [[0, 2, 3], [1, 2, 3]]
    # noise below the rounding step does not change the answer
    noisy = scores + np.array([[0, 0, -2e-6, 3e-6, 0], [1e-7, -1e-7, 0, 2e-7, 0]])
    assert demo.top_k_excluding(noisy, np.array([1, 0]), 3).tolist() == got.tolist()


def test_cut_margins():
    scores = np.array([[0.9, 0.8, 0.7, 0.65], [0.9, 0.5, 0.5, 0.1]])
    assert np.allclose(demo.cut_margins(scores, np.array([0, 3]), 2), [0.05, 0.0])


def test_random_negatives_are_seeded_distinct_and_skip_the_positive():
    ids = [f"q{i}" for i in range(200)]
    exclude = np.arange(200) % 10
    a = demo.random_negatives(ids, 10, exclude, 3)
    assert (a != exclude[:, None]).all()
    assert all(len(set(r)) == 3 for r in a.tolist())
    assert a.min() >= 0 and a.max() <= 9
    assert np.array_equal(a, demo.random_negatives(ids, 10, exclude, 3))
    assert not np.array_equal(a, demo.random_negatives(ids, 10, exclude, 3, seed=1))
    # a query's draw does not depend on the others
    assert np.array_equal(demo.random_negatives(ids[5:6], 10, exclude[5:6], 3)[0], a[5])
    # every other index is reachable (uniform over the pool minus the positive)
    counts = np.bincount(a[exclude == 0].ravel(), minlength=10)
    assert counts[0] == 0 and (counts[1:] > 0).all()


def test_bm25_scores_rank_the_matching_passage_first():
    s = demo.bm25_scores(["boiling point of water"], ["cats sleep a lot", "water boils at 100 degrees, its "
                                                      "boiling point at sea level", "point guard in basketball"])
    assert s.shape == (1, 3)
    assert s[0].argmax() == 1 and s[0, 0] == 0.0


# ----------------------------------------------------------------------------------------------- the build


def test_build_from_shipped_vectors_reproduces_the_shipped_file(built_from_shipped_vectors):
    text = demo.to_jsonl(built_from_shipped_vectors.triplets)
    assert text == demo.TRIPLETS_PATH.read_text(encoding="utf-8")


def test_shipped_table_structure(shipped, queries):
    assert list(shipped.columns) == list(demo.COLUMNS)
    assert shipped.equals(shipped.sort_values(demo.SORT_KEYS).reset_index(drop=True))
    by_id = {q.query_id: q for q in queries}
    sizes = shipped.groupby("source").size()
    assert set(sizes.index) == set(BASE_SOURCES) | set(demo.HYBRIDS)
    assert sizes["bm25"] == sizes["dense"] == sizes["random"] == demo.K * len(queries)
    n_llm = sum(len(q.llm_negatives) + len(q.false_negatives) for q in queries)
    assert sizes["llm"] == n_llm
    for spec in demo.HYBRIDS:  # equal shares of both parts, a negative found by both kept once
        a, b = spec.split("+")
        pairs = {s: set(zip(shipped.query_id[shipped.source == s], shipped.negative_id[shipped.source == s]))
                 for s in (a, b, spec)}
        assert pairs[spec] <= pairs[a] | pairs[b]
        assert pairs[min((a, b), key=lambda x: sizes[x])] <= pairs[spec]  # all of the smaller part
        assert sizes[spec] == len(pairs[spec])
    assert not shipped.duplicated(["source", "query_id", "negative_id"]).any()
    # the query's own positive is never a negative; labels are exactly "the query's planted false negative"
    assert (shipped["negative"] != shipped["positive"]).all()
    planted = shipped.apply(lambda r: r["negative"] in by_id[r["query_id"]].false_negatives, axis=1)
    assert (shipped["fn_label"] == planted.astype(int)).all()
    llm = shipped[shipped["source"] == "llm"]
    assert llm["fn_label"].sum() == sum(len(q.false_negatives) for q in queries)
    for qid, group in llm.groupby("query_id"):
        q = by_id[qid]
        assert set(group["negative"]) == set(q.llm_negatives) | set(q.false_negatives)
    # mined sources: K distinct negatives per query
    for s in ("bm25", "dense", "random"):
        part = shipped[shipped["source"] == s]
        assert (part.groupby("query_id")["negative_id"].nunique() == demo.K).all()
    # random negatives are (almost) never the planted ones; dense mining finds many of them
    assert sizes["random"] > 0 and shipped.query("source == 'random'")["fn_label"].sum() <= 3
    assert shipped.query("source == 'dense'")["fn_label"].sum() > shipped.query("source == 'bm25'")["fn_label"].sum() / 2


def test_shipped_table_loads_through_the_project_loader(shipped):
    t = demo.load_demo()
    assert len(t) == len(shipped)
    assert t["fn_label"].isin([0.0, 1.0]).all()
    assert "topic" in t.columns


@pytest.mark.slow
def test_build_with_the_real_encoder_is_byte_identical(tmp_path, default_encoder):
    """The full build step (dense mining with the real model) reproduces both shipped files."""
    result = demo.build(encoder=default_encoder)
    paths = demo.write(result, tmp_path)
    assert paths["triplets"].read_bytes() == demo.TRIPLETS_PATH.read_bytes()
    assert json.loads(paths["meta"].read_text()) == json.loads(demo.EMBEDDINGS_PATH.with_suffix(".json").read_text())
    new_h, new_m = read_embeddings(paths["embeddings"])
    old_h, old_m = read_embeddings(demo.EMBEDDINGS_PATH)
    assert new_h == old_h
    assert np.abs(new_m - old_m).max() < 1e-4
    # the dense top-K cut is far from a tie, so float noise of the encoder cannot flip it
    assert result.stats["min_cut_margin_dense"] > 1e-5, result.stats


# ----------------------------------------------------------------------------------------------- cache


def test_seed_cache_makes_the_first_run_encode_nothing(tmp_path, shipped):
    from ecisem_core.embed.texts import embed_triplets
    from ecisem_core.embed.encoders import default_encoder

    encoder = default_encoder()

    r = demo.seed_cache(tmp_path)
    assert r.skipped == "" and r.stored == len(read_embeddings(demo.EMBEDDINGS_PATH)[0]) and r.already == 0
    assert demo.seed_cache(tmp_path).stored == 0  # idempotent
    emb = embed_triplets(shipped, encoder, cache_dir=tmp_path)
    assert emb.n_encoded == 0 and emb.n_cached == len(emb.texts)
    assert encoder._model is None  # the model was never loaded


def test_seed_cache_refuses_vectors_of_another_encoder_version(tmp_path):
    r = demo.seed_cache(tmp_path, model_id="all-MiniLM-L6-v2@gt-9.9.9")
    assert r.stored == 0 and "9.9.9" in r.skipped
    assert not any(tmp_path.iterdir())


def test_shipped_vectors_are_the_default_encoders(default_encoder):
    meta = json.loads(demo.EMBEDDINGS_PATH.with_suffix(".json").read_text())
    assert meta["model_id"] == default_encoder.model_id


# ----------------------------------------------------------------------------------------------- FN + scores


@pytest.fixture(scope="module")
def demo_prepared(tmp_path_factory):
    from ecisem_core.embed.encoders import default_encoder
    from ecisem_core.score import prepare

    cache = tmp_path_factory.mktemp("demo_cache")
    demo.seed_cache(cache)
    return prepare(demo.load_demo(), default_encoder(), cache_dir=cache)


def test_planted_false_negatives_are_flagged_and_fn_score_beats_s_qn(demo_prepared):
    from ecisem_core.curation.negatives import fn_baselines

    p = demo_prepared
    assert p.embedded.n_encoded == 0
    table = p.triplets.assign(s_qp=p.s_qp, s_qn=p.s_qn, s_pn=p.s_pn).join(p.flags)
    llm = table[table["source"] == "llm"]
    planted = llm[llm["fn_label"] == 1]
    recall = planted["fn_flag"].mean()
    precision = llm.loc[llm["fn_flag"], "fn_label"].mean()
    unique = table.drop_duplicates(["query_id", "negative_id"])
    b_all = fn_baselines(unique, unique["fn_label"]).set_index("method")
    b_llm = fn_baselines(llm, llm["fn_label"]).set_index("method")
    print(f"\ndemo FN: planted flagged {int(planted['fn_flag'].sum())}/{len(planted)} (recall {recall:.3f}), "
          f"flag precision in llm {precision:.3f}; AUC fn_score {b_all.loc['fn_score', 'auc']:.3f} vs s_qn "
          f"{b_all.loc['s_qn', 'auc']:.3f} on {len(unique)} unique pairs; llm source {b_llm.loc['fn_score', 'auc']:.3f}"
          f" vs {b_llm.loc['s_qn', 'auc']:.3f}")
    assert recall >= 0.4
    assert precision >= 0.5
    assert b_all.loc["fn_score", "auc"] > b_all.loc["s_qn", "auc"]
    assert b_llm.loc["fn_score", "auc"] > b_llm.loc["s_qn", "auc"]


def test_every_demo_source_gets_a_score_and_random_is_last(demo_prepared):
    from ecisem_core.score import score_prepared

    r = score_prepared(demo_prepared, uncertainty=False)
    s = r.sources.set_index("source")
    assert set(s.index) == set(BASE_SOURCES) | set(demo.HYBRIDS)
    assert np.isfinite(s["eci_sem"]).all() and (s["eci_sem"] > 0).all()
    assert s["eci_sem"].idxmin() == "random"
    assert s["eci_v1"].idxmin() == "random"
