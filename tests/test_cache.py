"""Embedding cache: hits skip the model, corrupt shards are rebuilt, texts are de-duplicated."""
from __future__ import annotations

import pandas as pd
import pytest

from ecisem_core.embed.cache import EmbeddingCache
from ecisem_core.embed.texts import embed_triplets

from helpers import TableEncoder

VEC = {"q": [1, 0, 0], "p": [0, 1, 0], "n1": [0, 0, 1], "n2": [1, 1, 0]}
TABLE = pd.DataFrame({"query": ["q", "q"], "positive": ["p", "p"], "negative": ["n1", "n2"]})


def test_dedup_and_cache_hit_never_calls_the_encoder(tmp_path):
    enc = TableEncoder(VEC)
    first = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert first.n_encoded == 4 and first.matrix.shape == (4, 3)  # q, p, n1, n2 once each
    assert list(first.qi) == [0, 0] and first.pi[0] == first.pi[1]
    enc2 = TableEncoder(VEC)
    second = embed_triplets(TABLE, enc2, cache_dir=tmp_path)
    assert enc2.calls == 0 and second.n_cached == 4
    assert (second.matrix == first.matrix).all()


def test_corrupt_shard_is_detected_and_rebuilt(tmp_path):
    embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    cache = EmbeddingCache(tmp_path, "table-encoder")
    (shard,) = list(cache.folder.glob("shard-*.npz"))
    shard.write_bytes(b"not a zip file at all")
    enc = TableEncoder(VEC)
    again = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert enc.calls > 0 and again.n_encoded == 4
    assert not shard.exists()
    assert len(list(cache.folder.glob("shard-*.npz"))) == 1


def test_truncated_shard_is_detected(tmp_path):
    embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    cache = EmbeddingCache(tmp_path, "table-encoder")
    (shard,) = list(cache.folder.glob("shard-*.npz"))
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    cache2 = EmbeddingCache(tmp_path, "table-encoder")
    _, found = cache2.lookup(["x"])
    assert cache2.corrupt and not found.any()


def test_model_id_separates_caches(tmp_path):
    embed_triplets(TABLE, TableEncoder(VEC, model_id="a"), cache_dir=tmp_path)
    other = TableEncoder(VEC, model_id="b")
    embed_triplets(TABLE, other, cache_dir=tmp_path)
    assert other.calls > 0


@pytest.mark.slow
def test_real_default_encoder_cache_hit_does_not_load_the_model(tmp_path, default_encoder):
    from ecisem_core.embed.encoders import default_encoder as make

    table = pd.DataFrame({"query": ["how tall is mount everest"],
                          "positive": ["Mount Everest is 8,849 metres high."],
                          "negative": ["K2 is the second-highest mountain."]})
    first = embed_triplets(table, default_encoder, cache_dir=tmp_path)
    assert first.matrix.shape == (3, 384)
    assert abs(float((first.matrix ** 2).sum(axis=1).mean()) - 1) < 1e-5
    fresh = make()
    second = embed_triplets(table, fresh, cache_dir=tmp_path)
    assert fresh._model is None  # never loaded
    assert (second.matrix == first.matrix).all()
    s = first.matrix @ first.matrix.T
    assert s[0, 1] > s[0, 2]  # the answering passage is closer to the query
