"""`ecisem embed --ray` on a local Ray instance (2 CPUs): the vectors equal the single-process ones and a later
`ecisem score` on the same cache encodes nothing."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from ecisem_core.cli import main
from ecisem_core.embed.cache import EmbeddingCache
from ecisem_core.embed.distributed import EncoderSpec, embed_with_ray, texts_by_role
from ecisem_core.embed.encoders import SentenceTransformerEncoder
from ecisem_core.embed.texts import embed_texts
from ecisem_core.hashing import text_hashes
from ecisem_core.io.load import read_triplets
from ecisem_core.score import prepare

ray = pytest.importorskip("ray", reason="Ray is not installed (requirements.txt pins ray[data])")

TOPICS = ["solar panels", "sourdough bread", "the French revolution", "black holes", "tax returns",
          "marathon training", "python decorators", "coral reefs", "jazz piano", "vaccines"]


def small_triplets() -> list[dict[str, str]]:
    """20 triplets over 10 queries in two sources; every query appears twice and some passages repeat, so the
    unique texts are fewer than 60."""
    rows = []
    for i, topic in enumerate(TOPICS):
        query = f"how do {topic} work"
        positive = f"An introduction to {topic}: what they are, how they work and why they matter."
        rows.append({"query": query, "positive": positive, "source": "close",
                     "negative": f"A common misconception about {topic}, explained in detail."})
        rows.append({"query": query, "positive": positive, "source": "far",
                     "negative": f"An introduction to {TOPICS[(i + 3) % len(TOPICS)]}: what they are, how they "
                                 "work and why they matter."})
    return rows


@pytest.fixture(scope="module")
def local_ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024**2)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_embed_matches_single_process_and_score_encodes_nothing(local_ray, default_encoder, tmp_path,
                                                                     monkeypatch):
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in small_triplets()), encoding="utf-8")
    cache_dir = tmp_path / "cache"

    assert main(["embed", str(data), "--ray", "--actors", "2", "--batch-size", "8", "--cache-dir",
                 str(cache_dir)]) == 0

    triplets = read_triplets([data]).triplets
    [(texts, role)] = texts_by_role(triplets, default_encoder.role_aware)
    assert 20 < len(texts) < 60
    cached, found = EmbeddingCache(cache_dir, default_encoder.model_id).lookup(text_hashes(texts))
    assert found.all()
    single = embed_texts(texts, role, default_encoder, use_cache=False)
    assert cached is not None and cached.dtype == np.float32 and cached.shape == single.shape
    assert np.allclose(cached, single, atol=1e-5)

    # a second Ray run finds every text cached and starts no work
    again = embed_with_ray(triplets, EncoderSpec("default"), cache_dir=cache_dir, log=None)
    assert (again.n_encoded, again.n_cached, again.n_unique) == (0, len(texts), len(texts))

    def refuse(self, texts, role, progress=False):
        raise AssertionError(f"encoded {len(texts)} {role} texts although the Ray path had cached them")

    monkeypatch.setattr(SentenceTransformerEncoder, "encode", refuse)
    prep = prepare(triplets, default_encoder, cache_dir=cache_dir)
    assert prep.embedded.n_encoded == 0 and prep.embedded.n_cached == len(texts)
    out = tmp_path / "out"
    assert main(["score", str(data), "--cache-dir", str(cache_dir), "--out", str(out), "--quiet",
                 "--bootstrap", "20"]) == 0
    assert set(pd.read_csv(out / "sources.csv").source) == {"close", "far"}


def test_embed_rejects_uncached_encoders_and_no_cache(tmp_path, capsys):
    data = tmp_path / "small.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in small_triplets()), encoding="utf-8")
    assert main(["embed", str(data), "--ray", "--encoder", "tfidf", "--cache-dir", str(tmp_path / "c")]) == 2
    assert "not cached" in capsys.readouterr().err
    assert main(["embed", str(data), "--no-cache"]) == 2
    assert main(["embed", str(data), "--actors", "2"]) == 2
    assert main(["embed", "--ray", str(data), str(data)]) == 2
    assert "not a Ray address" in capsys.readouterr().err
