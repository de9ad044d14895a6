"""Small test doubles shared by test modules (not fixtures: plain functions and classes)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from ecisem_core.embed.encoders import l2_normalise
from ecisem_core.metric.lexical import word_tokenize


class TableEncoder:
    """An encoder with fixed vectors per text (for hand-checked examples); counts its calls."""

    role_aware = False
    cacheable = True

    def __init__(self, vectors: dict[str, list[float]], model_id: str = "table-encoder") -> None:
        self.vectors = vectors
        self.model_id = model_id
        self.calls = 0

    def encode(self, texts, role, progress=False):
        self.calls += 1
        return l2_normalise(np.array([self.vectors[t] for t in texts], dtype=np.float32))

    def tokenize(self, text):
        return text.lower().split()


class HashEncoder:
    """Deterministic unit vectors from each text's sha1 (no model); counts the texts it encodes."""

    def __init__(self, role_aware: bool = False, cacheable: bool = False, model_id: str | None = None) -> None:
        self.role_aware = role_aware
        self.cacheable = cacheable
        self.model_id = model_id or f"test-hash-{role_aware}"
        self.encoded = 0

    def encode(self, texts, role, progress=False):
        self.encoded += len(texts)
        out = np.empty((len(texts), 8), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = np.random.default_rng(int.from_bytes(hashlib.sha1(text.encode()).digest()[:8], "little")).normal(
                size=8)
        return l2_normalise(out)

    def tokenize(self, text):
        return word_tokenize(text)


def synthetic_triplets(n_queries: int = 40, seed: int = 0) -> pd.DataFrame:
    """Three sources over the same queries: 'close' negatives share the query's words, 'far' ones do not,
    'mixed' alternates. Word soup, but enough for TF-IDF/LSA to separate them."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(400)]
    rows = []
    for q in range(n_queries):
        topic = rng.choice(vocab, size=12, replace=False)
        query = " ".join(topic[:4])
        positive = " ".join(np.concatenate([topic[:3], topic[4:9]]))
        close = " ".join(np.concatenate([topic[:2], topic[6:10], rng.choice(vocab, 3)]))
        far = " ".join(rng.choice(vocab, size=8))
        rows.append((f"q{q}", query, positive, close, "close"))
        rows.append((f"q{q}", query, positive, far, "far"))
        rows.append((f"q{q}", query, positive, close if q % 2 else far, "mixed"))
    return pd.DataFrame(rows, columns=["query_id", "query", "positive", "negative", "source"])
