"""A disk cache of :func:`ecisem_core.score.prepare`'s per-triplet terms, so that a restarted dashboard scores a
table it has seen before without computing them again.

    prep = prepare_cached(table, encoder, folder)   # the same Prepared as prepare(table, encoder)

What an entry keeps: s_qp, s_qn, s_pn, the source and query codes, the false-negative flags table, the word-token
matrix of the unique texts (x, vocabulary, IDF), ρ for the config's tokenizer and the rows of its sample (N, seed).
Not kept: the embeddings (the embedding cache holds them; they are looked up again, as :func:`prepare` does) and
the table itself (the caller has it); the residual directions of the sample are taken again from the embeddings.

Found by: the SHA-256 of the table's content (pandas' hash of every row of every column, the column names and
dtypes), the encoder's model id, the config's N and seed, the source code of every module of ``ecisem_core``, the
Python version and its Unicode tables, and the versions of numpy, pandas, scipy and pyarrow. Any change to any of
them misses, and the terms are computed and stored afresh. Only encoders whose vectors the embedding cache keeps
(``cacheable``), the word tokenizer (ρ with the encoder's tokenizer would depend on the tokenizer library too), no
IDF corpus and no separate false-negative encoder: anything else is prepared as usual and not stored.

Safety, as the parsed-input cache (:mod:`ecisem_core.io.parsed_cache`): each file is written whole or not at all
(:mod:`ecisem_core.io.atomic`), the JSON part last; an entry is kept only if it reads back equal to what was
computed; the JSON part names the SHA-256 of the other two, so parts of different writes are never read together;
a damaged, partial or inconsistent entry (the embeddings' number of unique texts, triplet rows or vectors differ
from those it was computed from) is computed again, never trusted; nothing is unpickled
(``numpy.load(allow_pickle=False)``, Arrow IPC, JSON).
The newest :data:`KEEP` entries are kept; only files named as entries are ever removed.

Measured on the 100k benchmark file (105,975 triplets, 11,000 unique texts; 2 cores): prepared and stored in 1.36 s,
from the cache in 0.21–0.36 s (of which 0.07–0.16 s is the embedding cache's lookup); the entry takes 11.7 MB. With
the parts' SHA-256 checked, in a slower hour of the machine: stored in 2.4 s, read in 0.33–0.49 s.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import scipy
import scipy.sparse as sp

from ecisem_core.config import ScoreConfig
from ecisem_core.embed.encoders import Encoder
from ecisem_core.embed.texts import Embedded, Progress, embed_triplets
from ecisem_core.errors import InputError
from ecisem_core.hashing import file_sha256, source_tree_sha256
from ecisem_core.io.atomic import TMP_TAG, remove_quietly, write_file_atomically
from ecisem_core.metric.lexical import word_tokenize
from ecisem_core.metric.tokens import TokenMatrix
from ecisem_core.score import Prepared, prepare, with_ids

KEEP = 6
"""Entries kept in the folder (the newest by the time they were written or last read)."""
FORMAT = 1
"""Version of the entry layout (part of the key)."""
_ARRAYS = ("s_qp", "s_qn", "s_pn", "source_codes", "query_codes", "rho", "sample_rows", "sample_bounds", "x_data",
           "x_indices", "x_indptr", "x_shape", "idf")


@functools.cache
def code_fingerprint() -> str:
    """SHA-256 of the source of every module of ``ecisem_core`` (sorted paths), of the Python version and its
    Unicode tables (the word tokenizer and the text normalisation read them) and of the versions of the libraries
    the terms are computed with."""
    root = Path(__file__).resolve().parent
    versions = (f"python {sys.version} unicode {unicodedata.unidata_version} numpy {np.__version__} "
                f"pandas {pd.__version__} scipy {scipy.__version__} pyarrow {pa.__version__}")
    return source_tree_sha256(root, f"{FORMAT}\0{versions}\0")


def entry_name(triplets: pd.DataFrame, encoder: Encoder, config: ScoreConfig) -> str | None:
    """The key of the entry for these inputs (see the module docstring); ``None`` when the table's cells cannot be
    hashed (then nothing is cached)."""
    try:
        rows = pd.util.hash_pandas_object(triplets, index=False).to_numpy()
    except TypeError:
        return None
    h = hashlib.sha256(code_fingerprint().encode())
    h.update(json.dumps([encoder.model_id, config.tokenizer, config.sample_size, config.seed,
                         [str(c) for c in triplets.columns], [str(d) for d in triplets.dtypes]]).encode())
    h.update(rows.tobytes())
    return h.hexdigest()[:40]


def _embedded_digest(emb: Embedded) -> str:
    """What ties an entry to the embeddings it was computed from: the number of unique texts, every triplet's rows
    and the vectors themselves (BLAKE2b: 17 MB at 100k triplets in about 20 ms). Vectors encoded again after the
    embedding cache was cleared can differ in their last bits; the entry is then computed again, so s_qp, s_qn,
    s_pn always match the residual directions taken from the embeddings."""
    h = hashlib.blake2b(str(len(emb.texts)).encode(), digest_size=32)
    for a in (emb.qi, emb.pi, emb.ni):
        h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    h.update(str(emb.matrix.dtype).encode())
    h.update(np.ascontiguousarray(emb.matrix).data)
    return h.hexdigest()


def _paths(folder: Path, name: str) -> tuple[Path, Path, Path]:
    stem = folder / name
    return stem.with_suffix(".npz"), stem.with_suffix(".arrow"), stem.with_suffix(".json")


def prepare_cached(triplets: pd.DataFrame, encoder: Encoder, folder: str | os.PathLike[str],
                   config: ScoreConfig | None = None, *, progress: Progress | None = None) -> Prepared:
    """:func:`~ecisem_core.score.prepare` of ``triplets`` with ``encoder`` (embeddings from the default embedding
    cache), its terms read from ``folder`` when an entry for these inputs is there, else computed and stored."""
    config = config or ScoreConfig()
    keyable = encoder.cacheable and not config.idf_corpus and config.tokenizer == "word"
    name = entry_name(triplets, encoder, config) if keyable else None
    if name is None:
        return prepare(triplets, encoder, config, progress=progress)
    folder = Path(folder)
    try:
        hit = _read(folder, name, triplets, encoder, config, progress)
    except Exception:  # noqa: BLE001 — whatever is wrong with an entry, it is computed again (an error of the
        hit = None     # inputs themselves comes back from prepare below)
    if hit is not None:
        return hit
    prep = prepare(triplets, encoder, config, progress=progress)
    _store(folder, name, prep, config)
    return prep


def _arrays(prep: Prepared, config: ScoreConfig) -> dict[str, np.ndarray]:
    rows = prep.sample_rows(config)
    x = prep.tokens.x
    return {
        "s_qp": prep.s_qp, "s_qn": prep.s_qn, "s_pn": prep.s_pn, "source_codes": prep.source_codes,
        "query_codes": prep.query_codes, "rho": prep.rho(config),
        "sample_rows": np.concatenate([rows[n] for n in prep.source_names]) if rows else np.zeros(0, np.int64),
        "sample_bounds": np.cumsum([0] + [rows[n].size for n in prep.source_names]),
        "x_data": x.data, "x_indices": x.indices, "x_indptr": x.indptr, "x_shape": np.asarray(x.shape),
        "idf": prep.tokens.idf,
    }


def _store(folder: Path, name: str, prep: Prepared, config: ScoreConfig) -> bool:
    """Write the entry ``name`` of ``prep``; ``False`` when it is not kept (the folder cannot be written, the token
    matrix is not the word tokenizer's, or the entry does not read back equal)."""
    tokens = prep.tokens
    if tokens is None or tokens.tokenize is not word_tokenize or not tokens.x.has_sorted_indices:
        return False
    arrays_path, flags_path, meta_path = _paths(folder, name)
    arrays = _arrays(prep, config)
    meta = {"format": FORMAT, "source_names": list(prep.source_names), "vocab": [str(v) for v in tokens.vocab],
            "embedded": _embedded_digest(prep.embedded), "n": len(prep.triplets)}
    try:
        write_file_atomically(arrays_path, lambda p: _save_npz(p, arrays), "the prepared-term cache")
        write_file_atomically(flags_path, lambda p: feather.write_feather(prep.flags.reset_index(drop=True), p,
                                                                           compression="zstd"),
                              "the prepared-term cache")
        meta["files"] = {p.suffix: file_sha256(p) for p in (arrays_path, flags_path)}  # the JSON names its parts
        write_file_atomically(meta_path, lambda p: p.write_text(json.dumps(meta, ensure_ascii=False),
                                                                encoding="utf-8"), "the prepared-term cache")
    except (InputError, OSError, ValueError, TypeError, pa.ArrowException):
        remove_quietly(arrays_path, flags_path, meta_path)
        return False
    back = _load(arrays_path, flags_path, meta_path)
    if back is None or not _same(back, arrays, prep.flags, meta):
        remove_quietly(arrays_path, flags_path, meta_path)
        return False
    _prune(folder)
    return True


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: np.savez would add ".npz" to a path's name
        np.savez(f, **arrays)


def _load(arrays_path: Path, flags_path: Path,
          meta_path: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict] | None:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        files = meta.get("files") if isinstance(meta, dict) else None
        if not isinstance(files, dict) or any(files.get(p.suffix) != file_sha256(p)
                                              for p in (arrays_path, flags_path)):
            return None  # parts of another write (two processes storing the same entry) or changed since
        with np.load(arrays_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS}
        flags = feather.read_table(flags_path, memory_map=False).to_pandas()
        flags["fn_reasons"] = flags["fn_reasons"].to_numpy(dtype=object)  # as flag_triplets makes it
    except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile, pa.ArrowException):
        return None
    return arrays, flags, meta


def _same(back: tuple[dict[str, np.ndarray], pd.DataFrame, dict], arrays: dict[str, np.ndarray],
          flags: pd.DataFrame, meta: dict) -> bool:
    got, got_flags, got_meta = back
    return (got_meta == meta
            and all(got[k].dtype == np.asarray(v).dtype
                    and np.array_equal(got[k], v, equal_nan=got[k].dtype.kind == "f") for k, v in arrays.items())
            and list(got_flags.columns) == list(flags.columns) and (got_flags.dtypes == flags.dtypes).all()
            and got_flags.equals(flags.reset_index(drop=True)))


def _read(folder: Path, name: str, triplets: pd.DataFrame, encoder: Encoder, config: ScoreConfig,
          progress: Progress | None) -> Prepared | None:
    """The Prepared of the entry ``name``, or ``None`` when there is none or it does not fit these inputs."""
    paths = _paths(folder, name)
    if not all(p.exists() for p in paths):
        return None
    t0 = time.perf_counter()
    loaded = _load(*paths)
    if loaded is None or loaded[2].get("format") != FORMAT:
        return None
    a, flags, meta = loaded
    t = with_ids(triplets)
    n, names = len(t), list(meta["source_names"])
    if meta["n"] != n or len(flags) != n or any(a[k].shape != (n,) for k in ("s_qp", "s_qn", "s_pn", "rho",
                                                                              "source_codes", "query_codes")):
        return None
    t1 = time.perf_counter()
    emb = embed_triplets(t, encoder, progress=progress)
    t2 = time.perf_counter()
    shape = tuple(int(v) for v in a["x_shape"])
    if _embedded_digest(emb) != meta["embedded"] or shape[0] != len(emb.texts) \
            or not a["idf"].size == len(meta["vocab"]) == shape[1]:
        return None
    x = sp.csr_matrix((a["x_data"], a["x_indices"], a["x_indptr"]), shape=shape)
    x.has_sorted_indices = True
    qi, pi, ni = (np.asarray(v, dtype=np.int64) for v in (emb.qi, emb.pi, emb.ni))
    tokens = TokenMatrix(x, np.array(meta["vocab"], dtype=object), a["idf"], qi, pi, ni, word_tokenize)
    timings = {"embed_total": t2 - t1, "encoder_forward": emb.encode_seconds}
    prep = Prepared(t, emb, encoder, a["s_qp"], a["s_qn"], a["s_pn"], names, a["source_codes"], a["query_codes"],
                    flags.set_axis(t.index), timings, tokens)
    bounds, rows = a["sample_bounds"], a["sample_rows"]
    if bounds.shape != (len(names) + 1,) or rows.size and not (0 <= rows.min() and rows.max() < n):
        return None
    prep.remember(config, a["rho"], {s: rows[bounds[i]:bounds[i + 1]] for i, s in enumerate(names)})
    timings["prepared_cache"] = time.perf_counter() - t0 - timings["embed_total"]
    _touch(paths[2])
    return prep


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


ENTRY = re.compile(r"[0-9a-f]{40}")
"""The stem of an entry's files (:func:`entry_name`); nothing else in the folder is touched."""
STALE_S = 3600.0
"""A part without its JSON, or a temporary file, older than this is left over from a killed writer: removed."""


def _prune(folder: Path) -> None:
    """Remove all but the newest :data:`KEEP` entries (by their JSON part's modification time), and parts or
    temporary files left over from a killed writer (:data:`STALE_S`)."""
    def written(p: Path) -> int:
        try:
            return p.stat().st_mtime_ns
        except OSError:  # removed meanwhile by another process
            return -1

    entries = sorted((p for p in folder.glob("*.json") if ENTRY.fullmatch(p.stem)), key=written, reverse=True)
    for meta in entries[KEEP:]:
        remove_quietly(*_paths(folder, meta.stem))
    old = time.time_ns() - int(STALE_S * 1e9)
    for p in folder.iterdir():
        stem = p.name.split(".")[1] if p.name.startswith(".") else p.stem
        if not ENTRY.fullmatch(stem) or 0 <= written(p) > old:
            continue
        temporary = p.name.startswith(".") and TMP_TAG in p.name
        orphan = p.suffix in (".npz", ".arrow") and not p.with_suffix(".json").exists()
        if temporary or orphan:
            remove_quietly(p)
