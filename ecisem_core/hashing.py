"""Stable keys: text hashes of the embedding cache and precomputed-embedding files, derived ids, and the seeded
content key that samples triplets independently of row order.

``text_hash(t) = sha1(utf-8 bytes of t).hexdigest()`` (40 hex characters). The text is hashed exactly as given
(no normalisation), so a cache hit means the encoder saw the same string.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

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


def source_tree_sha256(root: Path, header: str) -> str:
    """SHA-256 of ``header`` and of every ``.py`` file under ``root`` (in sorted order, each as its relative path and
    bytes, NUL-terminated): what the disk caches key their entries by, so a change to the code that computed an
    entry makes it a miss."""
    h = hashlib.sha256(header.encode())
    for p in sorted(Path(root).rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
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


TEXT_COLUMNS: tuple[str, str, str] = ("query", "positive", "negative")
"""The columns a triplet's content key hashes, in this order."""


def content_key(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A seeded 64-bit hash of each row's (query, positive, negative): an order-free sampling key.

    pandas' ``hash_pandas_object(frame[["query", "positive", "negative"]], index=False, hash_key=k)`` with
    k = the seed as 16 digits: each column's values are hashed (SipHash-2-4 of their UTF-8 bytes), then the three
    hashes of a row are combined (:func:`combine_row_hashes`)."""
    return pd.util.hash_pandas_object(frame[list(TEXT_COLUMNS)], index=False, hash_key=_hash_key(seed)).to_numpy()


def content_key_of_texts(texts: Sequence[str], codes: Sequence[np.ndarray], seed: int) -> np.ndarray:
    """:func:`content_key` of the rows whose query, positive and negative are ``texts[codes[0]]``,
    ``texts[codes[1]]``, ``texts[codes[2]]``, each distinct text hashed once: the same keys (a string's hash does not
    depend on the rest of its column), without hashing three strings per row. The texts must be ``str``.

    >>> frame = pd.DataFrame({"query": ["q", "q"], "positive": ["p", "p"], "negative": ["a", "b"]})
    >>> texts, codes = ["q", "p", "a", "b"], [np.array([0, 0]), np.array([1, 1]), np.array([2, 3])]
    >>> bool(np.array_equal(content_key_of_texts(texts, codes, 7), content_key(frame, 7)))
    True
    """
    hashed = pd.util.hash_array(np.asarray(texts, dtype=object), hash_key=_hash_key(seed), categorize=False)
    return combine_row_hashes([hashed[np.asarray(c, dtype=np.int64)] for c in codes])


def combine_row_hashes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """One uint64 per row from its columns' uint64 hashes, as pandas combines them (``combine_hash_arrays`` in
    pandas/core/util/hashing.py, after CPython's tuple hash)::

        out = 0x345678;  for column i of n:  out = (out ^ h_i)·mult,  mult += 82520 + 2(n − i)   (mult₀ = 1000003)
        out += 97531                                                                      (all modulo 2⁶⁴)

    tests/test_hashing.py checks it against ``hash_pandas_object``."""
    n = len(columns)
    mult = np.uint64(1000003)
    out = np.full(len(columns[0]) if n else 0, 0x345678, dtype=np.uint64)
    for i, h in enumerate(columns):
        out ^= np.asarray(h, dtype=np.uint64)
        out *= mult
        mult += np.uint64(82520 + 2 * (n - i))
    out += np.uint64(97531)
    return out


def _hash_key(seed: int) -> str:
    return f"{seed:016d}"[-16:]
