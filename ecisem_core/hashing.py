"""Stable keys: text hashes of the embedding cache and precomputed-embedding files, derived ids, and the seeded
content key that samples triplets independently of row order.

``text_hash(t) = sha1(utf-8 bytes of t).hexdigest()`` (40 hex characters). The text is hashed exactly as given
(no normalisation), so a cache hit means the encoder saw the same string.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd


FILE_BLOCK = 8 << 20
"""Bytes read at a time by :func:`file_sha256`."""


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, read :data:`FILE_BLOCK` bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(FILE_BLOCK):
            h.update(block)
    return h.hexdigest()


def text_hash(text: str) -> str:
    """sha1 hex digest of the UTF-8 bytes of ``text``.

    >>> text_hash("abc")
    'a9993e364706816aba3e25717850c26c9cd0d89d'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def text_hashes(texts: Iterable[str]) -> list[str]:
    """:func:`text_hash` of each text, in order."""
    return [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts]


def short_id(prefix: str, text: str) -> str:
    """A readable id derived from text: ``prefix`` + first 12 hex of its sha1 (used when a file has no ids)."""
    return prefix + text_hash(text)[:12]


def short_ids(prefix: str, texts: pd.Series) -> np.ndarray:
    """:func:`short_id` of every text, each distinct text hashed once (a million triplets repeat their texts)."""
    codes, uniques = pd.factorize(texts.astype(str), sort=False)
    ids = np.array([short_id(prefix, u) for u in uniques], dtype=object)
    return ids[codes] if len(codes) else np.array([], dtype=object)


def content_key(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each row's (query, positive, negative): an order-free sampling key."""
    key = f"{seed:016d}"[-16:]
    return pd.util.hash_pandas_object(frame[["query", "positive", "negative"]], index=False,
                                      hash_key=key).to_numpy()
