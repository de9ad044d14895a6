"""On-disk embedding cache keyed by (model id, text hash).

Layout: ``<root>/<sha1(model id)[:16]>/meta.json`` (model id, dimension) and ``shard-*.npz`` files, each with
``hashes`` (fixed-width bytes) and ``vectors`` (float32), written atomically (temp file + rename) and read with
``allow_pickle=False``. A shard that cannot be read, has mismatched shapes or non-finite values is reported,
deleted and its texts re-encoded: a corrupt cache is rebuilt, never trusted. A lookup that hits every text never
loads the model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "ECISEM_CACHE_DIR"
"""Environment variable naming the cache root; default ``./.ecisem_cache``."""
DEFAULT_ROOT = ".ecisem_cache"


def default_cache_root() -> Path:
    """``$ECISEM_CACHE_DIR`` or ``./.ecisem_cache``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT)


@dataclass
class EmbeddingCache:
    """Embeddings of one model, stored under ``root``. ``corrupt`` lists shards found bad and removed."""

    root: Path
    model_id: str
    corrupt: list[str] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return Path(self.root) / hashlib.sha1(self.model_id.encode("utf-8")).hexdigest()[:16]

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz")) if self.folder.exists() else []

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as z:
                hashes, vectors = z["hashes"], z["vectors"]
            if hashes.ndim != 1 or vectors.ndim != 2 or len(hashes) != len(vectors):
                raise ValueError("shape mismatch")
            if not np.isfinite(vectors).all():
                raise ValueError("non-finite values")
            return hashes, vectors
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("embedding cache: removing corrupt shard %s (%s)", path, exc)
            self.corrupt.append(str(path))
            path.unlink(missing_ok=True)
            return None

    def lookup(self, hashes: list[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """Vectors for the hashes found: returns (matrix with rows for every hash or None, found mask).

        Rows of missing hashes are zero. ``None`` when nothing is cached for this model.
        """
        want = np.asarray(hashes, dtype="S40")
        found = np.zeros(len(want), dtype=bool)
        out: np.ndarray | None = None
        for shard in self._shards():
            got = self._read_shard(shard)
            if got is None:
                continue
            keys, vectors = got
            if out is None:
                out = np.zeros((len(want), vectors.shape[1]), dtype=np.float32)
            elif vectors.shape[1] != out.shape[1]:
                log.warning("embedding cache: removing shard %s with dimension %d", shard, vectors.shape[1])
                self.corrupt.append(str(shard))
                shard.unlink(missing_ok=True)
                continue
            order = np.argsort(keys)
            pos = np.searchsorted(keys, want, sorter=order)
            pos = np.clip(pos, 0, len(keys) - 1)
            hit = (keys[order[pos]] == want) & ~found if len(keys) else np.zeros_like(found)
            out[hit] = vectors[order[pos[hit]]]
            found |= hit
        return out, found

    def store(self, hashes: list[str], vectors: np.ndarray) -> None:
        """Append one shard (atomic write)."""
        if len(hashes) == 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "meta.json"
        if not meta.exists():
            meta.write_text(json.dumps({"model_id": self.model_id, "dim": int(vectors.shape[1])}), encoding="utf-8")
        final = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        tmp = final.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=np.asarray(hashes, dtype="S40"), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, final)
