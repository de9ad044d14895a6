"""Embed a triplet table: de-duplicate texts, reuse the on-disk cache, encode only the misses.

Returns one L2-normalised matrix of unique texts and index arrays ``qi, pi, ni`` so that
``matrix[qi[k]], matrix[pi[k]], matrix[ni[k]]`` are e_q, e_p, e_n of triplet k.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.embed.cache import EmbeddingCache, default_cache_root
from ecisem_core.embed.encoders import Encoder, TfidfLsaEncoder
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(done, total) — texts encoded so far out of the texts that need encoding."""

CHUNK = 1024
"""Texts per progress step."""


@dataclass
class Embedded:
    """Unique-text embeddings and the triplets' rows in them."""

    matrix: np.ndarray
    texts: list[str]
    qi: np.ndarray
    pi: np.ndarray
    ni: np.ndarray
    n_encoded: int
    n_cached: int
    encode_seconds: float

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])


def _encode_with_cache(
    texts: Sequence[str], role: str, encoder: Encoder, cache: EmbeddingCache | None, progress: Progress | None,
    show_progress: bool,
) -> tuple[np.ndarray, int, float]:
    """Vectors for texts (unique already); returns (matrix, number encoded, seconds spent encoding)."""
    hashes = text_hashes(texts)
    found = np.zeros(len(texts), dtype=bool)
    out = None
    if cache is not None:
        out, found = cache.lookup(hashes)
    missing = np.flatnonzero(~found)
    seconds = 0.0
    if missing.size:
        chunks = []
        bar = None
        if show_progress:
            bar = tqdm(total=int(missing.size), desc=f"encoding {role}s", unit="text")
        for start in range(0, missing.size, CHUNK):
            idx = missing[start : start + CHUNK]
            t0 = time.perf_counter()
            chunks.append(encoder.encode([texts[i] for i in idx], role))
            seconds += time.perf_counter() - t0
            if bar is not None:
                bar.update(len(idx))
            if progress is not None:
                progress(min(start + CHUNK, int(missing.size)), int(missing.size))
        if bar is not None:
            bar.close()
        new = np.concatenate(chunks).astype(np.float32)
        if out is not None and out.shape[1] != new.shape[1]:
            # cached vectors of another dimension cannot be this model's: encode the cached texts again
            hit = np.flatnonzero(found)
            log.warning("embedding cache: cached dimension %d but the encoder gives %d; re-encoding %d texts",
                        out.shape[1], new.shape[1], hit.size)
            again = encoder.encode([texts[i] for i in hit], role) if hit.size else new[:0]
            out = np.zeros((len(texts), new.shape[1]), dtype=np.float32)
            out[hit] = again
            if cache is not None:
                cache.store([hashes[i] for i in hit], np.asarray(again, dtype=np.float32))
        if out is None:
            out = np.zeros((len(texts), new.shape[1]), dtype=np.float32)
        out[missing] = new
        if cache is not None:
            cache.store([hashes[i] for i in missing], new)
    assert out is not None
    return out, int(missing.size), seconds


def factorize_columns(columns: Sequence[pd.Series]) -> tuple[list[np.ndarray], list[str]]:
    """Codes of each column's texts (as ``str``) in one table of unique texts, in order of first appearance over
    the columns one after the other — ``pd.factorize`` of their concatenation, without building it: each column is
    factorized on its own (Arrow-backed strings stay in Arrow, no Python object per row), then only their unique
    texts are. Missing values get code -1, as with ``pd.factorize``.

    >>> factorize_columns([pd.Series(["b", "a", "b"]), pd.Series(["c", "a"])])
    ([array([0, 1, 0]), array([2, 1])], ['b', 'a', 'c'])
    """
    parts = [pd.factorize(col.astype(str)) for col in columns]
    if not parts:
        return [], []
    joint, uniques = pd.factorize(np.concatenate([np.asarray(u, dtype=object) for _, u in parts]))
    out, offset = [], 0
    for codes, u in parts:
        remap = np.append(joint[offset : offset + len(u)], -1)  # code -1 (missing) stays -1
        out.append(remap[codes])
        offset += len(u)
    return out, list(uniques)


def embed_texts(texts: Sequence[str], role: str, encoder: Encoder, *, cache_dir: str | Path | None = None,
                use_cache: bool = True, show_progress: bool = False) -> np.ndarray:
    """L2-normalised vectors of ``texts`` (any order, repeats allowed) as ``role`` ("query" or "passage"), each
    unique text encoded once and read from / written to the embedding cache like :func:`embed_triplets`."""
    codes, uniq = pd.factorize(np.asarray(list(texts), dtype=object))
    cache = None
    if use_cache and encoder.cacheable:
        cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_root(), encoder.model_id)
    mat, _, _ = _encode_with_cache(list(uniq), role, encoder, cache, None, show_progress)
    return mat[codes]


def embed_triplets(
    triplets: pd.DataFrame,
    encoder: Encoder,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    show_progress: bool = False,
) -> Embedded:
    """Embed queries, positives and negatives of a triplet table once per unique text (and role, when the
    encoder uses prompts)."""
    m = len(triplets)
    cache = None
    if use_cache and cache_dir and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise InputError("the embedding cache (--cache-dir) must be a folder, but this is a file", cache_dir)
    if use_cache and encoder.cacheable:
        cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_root(), encoder.model_id)
    q, p, n = (triplets[col] for col in ("query", "positive", "negative"))
    if encoder.role_aware:
        (qi,), q_uniq = factorize_columns([q])
        (pi, ni), pn_uniq = factorize_columns([p, n])
        groups = [(q_uniq, "query"), (pn_uniq, "passage")]
        pi, ni = pi + len(q_uniq), ni + len(q_uniq)
    else:
        (qi, pi, ni), uniq = factorize_columns([q, p, n])
        groups = [(uniq, "passage")]
    if isinstance(encoder, TfidfLsaEncoder):
        encoder.fit([t for texts, _ in groups for t in texts])
    mats, texts_all, n_enc, secs = [], [], 0, 0.0
    for texts, role in groups:
        mat, k, s = _encode_with_cache(texts, role, encoder, cache, progress, show_progress)
        mats.append(mat)
        texts_all.extend(texts)
        n_enc += k
        secs += s
    matrix = np.concatenate(mats) if len(mats) > 1 else mats[0]
    return Embedded(matrix, texts_all, np.asarray(qi, np.int64), np.asarray(pi, np.int64), np.asarray(ni, np.int64),
                    n_enc, len(texts_all) - n_enc, secs)
