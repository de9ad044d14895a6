"""On-disk embedding cache keyed by (model id, text hash).

Layout: ``<root>/<sha1(model id)[:16]>/meta.json`` (model id, dimension) and ``shard-*.npz`` files, each with
``hashes`` (fixed-width bytes), ``vectors`` (float32) and ``checksum`` (sha256 of both), written atomically (temp
file + rename) and read with ``allow_pickle=False``; a shard's vectors, stored uncompressed, are memory-mapped from
the file (:func:`stored_member`) when the shard has a checksum to verify them, and looked up by the keys' 64-bit
hex prefixes (:func:`match_keys`). A shard that cannot be read, has mismatched shapes, non-finite
values, a dimension other than the cache's (``meta.json``, else the first shard's) or a checksum that does not
match (e.g. permuted vectors) is reported, deleted and its texts re-encoded: a corrupt cache is rebuilt, never
trusted. Shards written before checksums existed are read without one. A folder where a shard should be is an
:class:`~ecisem_core.errors.InputError` (it is not ours to delete). A lookup that hits every text never loads the
model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tokenize
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecisem_core.errors import InputError

log = logging.getLogger(__name__)

CACHE_ENV = "ECISEM_CACHE_DIR"
"""Environment variable naming the cache root; default ``./.ecisem_cache``."""
DEFAULT_ROOT = ".ecisem_cache"


def shard_checksum(hashes: np.ndarray, vectors: np.ndarray) -> str:
    """sha256 of a shard's keys and vectors (in order): changes when either is altered or permuted."""
    h = hashlib.sha256()
    # hashed from the arrays' own buffers: ``tobytes()`` would copy the whole shard once more
    h.update(np.ascontiguousarray(hashes, dtype="S40").reshape(-1).view(np.uint8))
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1).view(np.uint8))
    return h.hexdigest()


CHUNK_BYTES = 8 << 20
"""Bytes of vectors per step when a shard is checked or copied: bounds the temporaries (a boolean mask, a gathered
block) to a few MB instead of one more shard-sized array."""


def _chunk_rows(vectors: np.ndarray) -> int:
    return max(1, CHUNK_BYTES // max(1, vectors[:1].nbytes))


def all_finite(vectors: np.ndarray) -> bool:
    """True when every value is finite, checked :data:`CHUNK_BYTES` at a time."""
    step = _chunk_rows(vectors)
    return all(np.isfinite(vectors[s : s + step]).all() for s in range(0, len(vectors), step))


def copy_rows(dest: np.ndarray, dest_rows: np.ndarray, src: np.ndarray, src_rows: np.ndarray) -> None:
    """``dest[dest_rows] = src[src_rows]``, :data:`CHUNK_BYTES` at a time (the one-step form gathers every row
    into a temporary as large as the result first)."""
    step = _chunk_rows(src)
    for s in range(0, len(dest_rows), step):
        dest[dest_rows[s : s + step]] = src[src_rows[s : s + step]]


def stored_member(path: Path, archive: zipfile.ZipFile, name: str) -> np.ndarray | None:
    """A read-only memory map of the array ``name`` of an ``.npz`` file when the archive stores it uncompressed
    (``np.savez`` does) in a plain ``.npy`` layout (version 1 or 2 header, no Python objects, C order); None
    otherwise. The map reads the file's pages in place: reading a 530 MB shard into fresh memory first took about
    1.5 s of the lookup of a million triplets' texts, most of it page faults."""
    try:
        info = archive.getinfo(name)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)  # the member's local header: its name and extra field precede the data
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            offset = f.tell()
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if fortran or dtype.hasobject or offset + size != start + info.file_size or size == 0:
            return None
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    except (OSError, ValueError, KeyError, SyntaxError, struct.error, tokenize.TokenError):  # a damaged header
        return None


_HEX_VALUE = np.zeros(256, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def hex_prefixes(keys: np.ndarray) -> np.ndarray:
    """The first 16 hex digits of each 40-character key (``S40``) as a uint64 (non-hex characters count as 0)."""
    digits = _HEX_VALUE[np.ascontiguousarray(keys, dtype="S40").view(np.uint8).reshape(-1, 40)[:, :16]]
    packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])
    return packed.view(">u8").ravel().astype(np.uint64)


def match_keys(keys: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each wanted key, whether ``keys`` holds it and its row there (0 where it does not): found by the keys'
    64-bit hex prefixes (a sort and search of integers, not of 40-byte strings), each candidate then compared
    whole. When two of ``keys`` share a prefix, the whole keys are sorted and searched instead. A key stored twice
    in one shard (``store`` never writes one) is found at its first row."""
    if len(keys) == 0:
        return np.zeros(len(want), dtype=bool), np.zeros(len(want), dtype=np.int64)
    prefixes = hex_prefixes(keys)
    order = np.argsort(prefixes, kind="stable")
    ordered = prefixes[order]
    if np.any(ordered[1:] == ordered[:-1]):
        order = np.argsort(keys, kind="stable")
        pos = np.searchsorted(keys, want, sorter=order)
    else:
        pos = np.searchsorted(ordered, hex_prefixes(want))
    rows = order[np.clip(pos, 0, len(keys) - 1)]
    hit = keys[rows] == want
    return hit, np.where(hit, rows, 0)


def default_cache_root() -> Path:
    """``$ECISEM_CACHE_DIR`` or ``./.ecisem_cache``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_ROOT)


@dataclass
class EmbeddingCache:
    """Embeddings of one model, stored under ``root``. ``corrupt`` lists shards found bad and removed."""

    root: Path
    model_id: str
    corrupt: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if Path(self.root).exists() and not Path(self.root).is_dir():
            raise InputError("the embedding cache (--cache-dir) must be a folder, but this is a file", self.root)

    @property
    def folder(self) -> Path:
        return Path(self.root) / hashlib.sha1(self.model_id.encode("utf-8")).hexdigest()[:16]

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz")) if self.folder.exists() else []

    def _meta_dim(self) -> int | None:
        try:
            dim = json.loads((self.folder / "meta.json").read_text(encoding="utf-8")).get("dim")
        except (OSError, ValueError, AttributeError):
            return None
        return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None

    def _read_shard(self, path: Path, dim: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if path.is_dir():
            raise InputError("an embedding-cache shard is a folder, not a file; remove it or run with --no-cache",
                             path)
        try:
            with np.load(path, allow_pickle=False) as z:
                checksum = str(z["checksum"]) if "checksum" in z.files else None
                hashes = z["hashes"]
                # with a checksum to verify them, the vectors are mapped from the file, not copied out of it
                mapped = stored_member(path, z.zip, "vectors.npy") if checksum is not None else None
                vectors = mapped if mapped is not None else z["vectors"]
            if hashes.ndim != 1 or vectors.ndim != 2 or len(hashes) != len(vectors):
                raise ValueError("shape mismatch")
            if dim is not None and vectors.shape[1] != dim:
                raise ValueError(f"dimension {vectors.shape[1]}, the cache's is {dim}")
            if not all_finite(vectors):
                raise ValueError("non-finite values")
            if checksum is not None and checksum != shard_checksum(hashes, vectors):
                raise ValueError("checksum mismatch")
            return hashes, vectors
        except (OSError, ValueError, KeyError, TypeError, SyntaxError, zipfile.BadZipFile, EOFError,
                tokenize.TokenError) as exc:  # SyntaxError, TokenError: numpy's parse of a damaged .npy header
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
        dim = self._meta_dim()
        for shard in self._shards():
            got = self._read_shard(shard, dim)
            if got is None:
                continue
            keys, vectors = got
            dim = vectors.shape[1]
            if out is None:
                out = np.zeros((len(want), dim), dtype=np.float32)
            hit, rows = match_keys(keys, want)
            hit &= ~found
            copy_rows(out, np.flatnonzero(hit), vectors, rows[hit])
            del keys, vectors, got  # before the next shard is read: one shard in memory at a time
            found |= hit
        return out, found

    def store(self, hashes: list[str], vectors: np.ndarray) -> None:
        """Append one shard (atomic write)."""
        if len(hashes) == 0:
            return
        keys, vectors = np.asarray(hashes, dtype="S40"), np.asarray(vectors, dtype=np.float32)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = self.folder / "meta.json"
            dim = self._meta_dim()
            if dim is not None and dim != vectors.shape[1]:
                # the model now gives another dimension: the old vectors cannot belong to it
                log.warning("embedding cache: dimension changed from %d to %d; clearing %s", dim, vectors.shape[1],
                            self.folder)
                for old in self._shards():
                    if old.is_file():
                        old.unlink(missing_ok=True)
                dim = None
            if dim is None:
                meta.write_text(json.dumps({"model_id": self.model_id, "dim": int(vectors.shape[1])}),
                                encoding="utf-8")
            final = self.folder / f"shard-{uuid.uuid4().hex}.npz"
            tmp = final.with_suffix(".tmp.npz")
            np.savez(tmp, hashes=keys, vectors=vectors, checksum=np.asarray(shard_checksum(keys, vectors)))
            os.replace(tmp, final)
        except OSError as exc:
            raise InputError(f"cannot write the embedding cache ({exc.strerror or exc}); use --cache-dir or "
                             "--no-cache", self.folder) from None
