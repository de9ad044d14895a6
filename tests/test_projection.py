"""UMAP projection: even sampling per source, point layout, determinism, on-disk cache hits and rebuilds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecisem_core.embed.texts import Embedded
from ecisem_core.embed.projection import (data_fingerprint, project, projection_key, query_links, sample_rows,
                                    selected_rows, umap_2d)


def _table(n_queries=12, per=(5, 2, 9), seed=0):
    """Sources s0, s1, s2 with ``per`` negatives per query; texts unique except queries/positives."""
    rows = []
    for q in range(n_queries):
        for s, k in enumerate(per):
            for j in range(k):
                rows.append((f"q{q}", f"query {q}", f"positive {q}", f"neg {s} {q} {j}", f"s{s}"))
    t = pd.DataFrame(rows, columns=["query_id", "query", "positive", "negative", "source"])
    codes, uniq = pd.factorize(np.concatenate([t["query"], t["positive"], t["negative"]]))
    m = len(t)
    rng = np.random.default_rng(seed)
    mat = rng.normal(size=(len(uniq), 16)).astype(np.float32)
    mat /= np.linalg.norm(mat, axis=1, keepdims=True)
    emb = Embedded(mat, list(uniq), codes[:m], codes[m:2 * m], codes[2 * m:], 0, len(uniq), 0.0)
    return t, emb


class CountingLayout:
    def __init__(self):
        self.calls = 0

    def __call__(self, vectors, seed):
        self.calls += 1
        return np.asarray(vectors[:, :2], dtype=np.float32) + seed


def test_sample_rows_is_even_per_source_and_seeded():
    src = np.array(["a"] * 50 + ["b"] * 5 + ["c"] * 20)
    rows = sample_rows(src, cap=10, seed=3)
    counts = pd.Series(src[rows]).value_counts().to_dict()
    assert counts == {"a": 10, "b": 5, "c": 10}
    assert np.array_equal(rows, np.sort(rows))
    assert np.array_equal(rows, sample_rows(src, 10, 3))
    assert not np.array_equal(rows, sample_rows(src, 10, 4))


def test_points_shape_roles_and_coordinates(tmp_path):
    t, emb = _table()
    layout = CountingLayout()
    proj = project(emb, t, data_key=data_fingerprint(t), encoder_id="enc", cap=8, seed=0, cache_dir=tmp_path,
                   layout=layout)
    pts = proj.points
    roles = pts["role"].value_counts().to_dict()
    # s0: 60 rows → 8; s1: 24 → 8; s2: 108 → 8 negatives; queries/positives: unique among sampled rows
    assert roles["negative"] == 24
    sampled = pts.loc[pts["role"] == "negative", "row"].to_numpy()
    assert roles["query"] == t.iloc[sampled]["query"].nunique() == roles["positive"]
    assert proj.n_fitted == pts["text_index"].nunique() == len(pts)  # every text here is distinct
    assert {"x", "y", "role", "source", "row", "query_id", "text_index"} <= set(pts.columns)
    assert np.isfinite(pts[["x", "y"]].to_numpy()).all()
    # coordinates are those of the text's vector (the fake layout returns its first two components)
    assert np.allclose(pts[["x", "y"]].to_numpy(), emb.matrix[pts["text_index"].to_numpy(), :2])
    assert (pts.loc[pts["role"] == "negative", "source"].isin(["s0", "s1", "s2"])).all()


def test_second_call_is_a_cache_hit_and_keys_separate(tmp_path):
    t, emb = _table()
    key = data_fingerprint(t)
    layout = CountingLayout()
    first = project(emb, t, data_key=key, encoder_id="enc", cap=8, seed=0, cache_dir=tmp_path, layout=layout)
    second = project(emb, t, data_key=key, encoder_id="enc", cap=8, seed=0, cache_dir=tmp_path, layout=layout)
    assert (first.from_cache, second.from_cache, layout.calls) == (False, True, 1)
    pd.testing.assert_frame_equal(first.points, second.points)
    project(emb, t, data_key=key, encoder_id="enc", cap=9, seed=0, cache_dir=tmp_path, layout=layout)
    project(emb, t, data_key=key, encoder_id="other", cap=8, seed=0, cache_dir=tmp_path, layout=layout)
    assert layout.calls == 3
    assert len({projection_key(key, "enc", 8, 0), projection_key(key, "enc", 9, 0), projection_key(key, "enc", 8, 1),
                projection_key("x", "enc", 8, 0)}) == 4


def test_corrupt_cache_file_is_rebuilt(tmp_path):
    t, emb = _table()
    layout = CountingLayout()
    p = project(emb, t, data_key="k", encoder_id="e", cap=8, seed=0, cache_dir=tmp_path, layout=layout)
    path = tmp_path / "projections" / f"{p.key}.npz"
    path.write_bytes(b"not a zip")
    again = project(emb, t, data_key="k", encoder_id="e", cap=8, seed=0, cache_dir=tmp_path, layout=layout)
    assert not again.from_cache and layout.calls == 2
    assert project(emb, t, data_key="k", encoder_id="e", cap=8, seed=0, cache_dir=tmp_path, layout=layout).from_cache


def test_fingerprint_depends_on_content_not_file():
    t, _ = _table()
    assert data_fingerprint(t) == data_fingerprint(t.copy())
    changed = t.copy()
    changed.loc[0, "negative"] = "something else"
    assert data_fingerprint(changed) != data_fingerprint(t)


def test_query_links_and_selection():
    t, emb = _table()
    proj = project(emb, t, data_key="k", encoder_id="e", cap=8, seed=0, use_cache=False, layout=CountingLayout())
    pts = proj.points
    qid = pts.loc[pts["role"] == "negative", "query_id"].iloc[0]
    links = query_links(pts, qid)
    n_neg = int(((pts["query_id"] == qid) & (pts["role"] == "negative")).sum())
    assert (links["kind"] == "negative").sum() == n_neg and (links["kind"] == "positive").sum() == 1
    q = pts[(pts["query_id"] == qid) & (pts["role"] == "query")].iloc[0]
    assert np.allclose(links[["x0", "y0"]].to_numpy(), [q["x"], q["y"]])
    assert query_links(pts, "nope").empty
    neg_pos = np.flatnonzero((pts["role"] == "negative").to_numpy())[:2]
    assert np.array_equal(selected_rows(pts, neg_pos), np.sort(pts.iloc[neg_pos]["row"].to_numpy()))
    q_pos = np.flatnonzero(((pts["role"] == "query") & (pts["query_id"] == qid)).to_numpy())
    assert len(selected_rows(pts, q_pos)) == n_neg


def test_real_umap_is_cosine_and_deterministic():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 24))
    x = np.concatenate([c + 0.05 * rng.normal(size=(20, 24)) for c in centres]).astype(np.float32)
    a, b = umap_2d(x, seed=0), umap_2d(x, seed=0)
    assert a.shape == (60, 2) and np.array_equal(a, b)
    # clusters stay apart: each point's nearest neighbour in 2-D is from its own cluster
    d = np.linalg.norm(a[:, None] - a[None], axis=2) + np.eye(60) * 1e9
    assert (np.argmin(d, axis=1) // 20 == np.arange(60) // 20).mean() > 0.95


@pytest.mark.parametrize("n", [0, 1, 3])
def test_tiny_inputs_do_not_call_umap(n):
    out = umap_2d(np.eye(n, 5, dtype=np.float32), seed=0)
    assert out.shape == (n, 2) and np.isfinite(out).all()
