"""A cache that cannot go stale (issue 14): local models keyed by content, dimension and checksum checked on every
hit, folder-shaped shards and a file as the cache refused, all-zero precomputed vectors refused."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from ecisem_core.embed import fingerprint
from ecisem_core.embed.cache import EmbeddingCache, match_keys, shard_checksum, stored_member
from ecisem_core.embed.encoders import SentenceTransformerEncoder, l2_normalise
from ecisem_core.embed.precomputed import read_embeddings
from ecisem_core.embed.texts import embed_triplets
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes

from helpers import TableEncoder

VEC = {"q": [1, 0, 0], "p": [0, 1, 0], "n1": [0, 0, 1], "n2": [1, 1, 0]}
TABLE = pd.DataFrame({"query": ["q", "q"], "positive": ["p", "p"], "negative": ["n1", "n2"]})


class FolderModel(SentenceTransformerEncoder):
    """A 'model' whose vectors depend on its weight file's bytes (no torch): counts encode calls."""

    calls = 0

    def encode(self, texts, role, progress=False):
        type(self).calls += 1
        seed = (self_bytes := open(os.path.join(self.name_or_path, "model.safetensors"), "rb").read())[0]
        rng = np.random.default_rng(seed + len(self_bytes))
        return l2_normalise(rng.normal(size=(len(texts), 8)))


def _model(folder, weights: bytes):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "modules.json").write_text("[]")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_a_changed_model_at_the_same_path_is_re_encoded(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "_memo", {})
    folder = _model(tmp_path / "mdl", b"\x01" * 100)
    cache = tmp_path / "cache"
    first = embed_triplets(TABLE, FolderModel(str(folder)), cache_dir=cache)
    calls = FolderModel.calls
    again = embed_triplets(TABLE, FolderModel(str(folder)), cache_dir=cache)
    assert FolderModel.calls == calls and np.array_equal(first.matrix, again.matrix)   # a cache hit
    _model(folder, b"\x07" * 100)                                                      # same path, same size
    os.utime(folder / "model.safetensors", ns=(1, 1))
    changed = embed_triplets(TABLE, FolderModel(str(folder)), cache_dir=cache)
    assert FolderModel.calls > calls and changed.n_encoded == 4
    assert not np.allclose(changed.matrix, first.matrix)
    (folder / "config.json").write_text('{"hidden_size": 8, "x": 1}')                  # a config edit counts too
    assert FolderModel(str(folder)).model_id != FolderModel(str(_model(tmp_path / "m2", b"\x07" * 100))).model_id


def test_weight_files_are_hashed_once_and_remembered(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprint, "_memo", {})
    folder = _model(tmp_path / "mdl", b"\x02" * 1000)
    hashed = []
    real = fingerprint._sha256
    monkeypatch.setattr(fingerprint, "_sha256", lambda p: hashed.append(p.name) or real(p))
    a = fingerprint.model_fingerprint(folder, memo_root=tmp_path)
    monkeypatch.setattr(fingerprint, "_memo", {})          # a new process: the memo file on disk is used
    b = fingerprint.model_fingerprint(folder, memo_root=tmp_path)
    assert a == b and hashed.count("model.safetensors") == 1 and (tmp_path / fingerprint.MEMO_FILE).exists()


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a sentence-transformers model folder"):
        SentenceTransformerEncoder(str(tmp_path))


def _shard(cache: EmbeddingCache, keys, vectors, name="shard-extra.npz", checksum=True):
    k, v = np.asarray(keys, dtype="S40"), np.asarray(vectors, dtype=np.float32)
    extra = {"checksum": np.asarray(shard_checksum(k, v))} if checksum else {}
    np.savez(cache.folder / name, hashes=k, vectors=v, **extra)
    return cache.folder / name


def test_a_mixed_dimension_shard_is_detected_and_re_encoded(tmp_path):
    first = embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    cache = EmbeddingCache(tmp_path, "table-encoder")
    other = _shard(cache, text_hashes(["q", "p"]), np.ones((2, 5)))                   # dimension 5 among 3
    enc = TableEncoder(VEC)
    again = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert not other.exists() and again.matrix.shape == (4, 3)
    assert np.array_equal(again.matrix, first.matrix)


def test_cached_vectors_of_another_dimension_are_not_used(tmp_path):
    cache = EmbeddingCache(tmp_path, "table-encoder")
    cache.store(text_hashes(["q", "p"]), np.ones((2, 5)))     # a whole cache of dimension 5, partly hitting
    enc = TableEncoder(VEC)
    got = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert got.matrix.shape == (4, 3) and got.matrix[0].tolist() == [1, 0, 0]
    hit = embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    assert hit.n_cached == 4 and hit.matrix.shape == (4, 3)


def test_a_permuted_shard_fails_its_checksum(tmp_path):
    embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    cache = EmbeddingCache(tmp_path, "table-encoder")
    (shard,) = cache.folder.glob("shard-*.npz")
    with np.load(shard) as z:
        keys, vectors, checksum = z["hashes"], z["vectors"], z["checksum"]
    np.savez(shard, hashes=keys, vectors=vectors[::-1], checksum=checksum)
    enc = TableEncoder(VEC)
    again = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert enc.calls > 0 and again.n_encoded == 4 and again.matrix[0].tolist() == [1, 0, 0]


def test_shards_without_a_checksum_are_still_read(tmp_path):
    cache = EmbeddingCache(tmp_path, "table-encoder")
    cache.folder.mkdir(parents=True)
    _shard(cache, text_hashes(["q"]), [[1, 0, 0]], checksum=False)
    _, found = cache.lookup(text_hashes(["q"]))
    assert found.all() and not cache.corrupt


def test_folder_shaped_shard_and_file_as_cache_are_input_errors(tmp_path):
    cache = EmbeddingCache(tmp_path, "table-encoder")
    (cache.folder / "shard-x.npz").mkdir(parents=True)
    with pytest.raises(InputError, match="shard-x.npz"):
        embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match="must be a folder"):
        embed_triplets(TABLE, TableEncoder(VEC), cache_dir=f)


def test_all_zero_precomputed_vectors_are_refused(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, embedding=np.array([[1.0, 0.0], [0.0, 0.0]]), text=np.array(["a", "b"]))
    with pytest.raises(InputError, match="all zeros") as err:
        read_embeddings(path)
    assert err.value.line == 2


def test_stored_vectors_are_mapped_and_equal_to_the_loaded_ones(tmp_path):
    rng = np.random.default_rng(0)
    keys = np.asarray(text_hashes([f"t{i}" for i in range(50)]), dtype="S40")
    vectors = rng.standard_normal((50, 7)).astype(np.float32)
    plain, packed = tmp_path / "plain.npz", tmp_path / "packed.npz"
    np.savez(plain, hashes=keys, vectors=vectors, checksum=np.asarray(shard_checksum(keys, vectors)))
    np.savez_compressed(packed, hashes=keys, vectors=vectors)
    with np.load(plain) as z:
        mapped = stored_member(plain, z.zip, "vectors.npy")
        assert isinstance(mapped, np.memmap) and np.array_equal(mapped, vectors) and not mapped.flags.writeable
        assert np.array_equal(stored_member(plain, z.zip, "hashes.npy"), keys)
        assert stored_member(plain, z.zip, "missing.npy") is None
    with np.load(packed) as z:
        assert stored_member(packed, z.zip, "vectors.npy") is None  # compressed: read the usual way


def test_a_truncated_mapped_shard_is_removed_and_re_encoded(tmp_path):
    embed_triplets(TABLE, TableEncoder(VEC), cache_dir=tmp_path)
    (shard,) = EmbeddingCache(tmp_path, "table-encoder").folder.glob("shard-*.npz")
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    enc = TableEncoder(VEC)
    again = embed_triplets(TABLE, enc, cache_dir=tmp_path)
    assert again.n_encoded == 4 and again.matrix[0].tolist() == [1, 0, 0]


def test_keys_are_matched_by_prefix_and_then_whole():
    keys = np.asarray(text_hashes([f"k{i}" for i in range(200)]), dtype="S40")
    want = np.concatenate([keys[::-3], np.asarray(text_hashes(["absent", "also absent"]), dtype="S40")])
    hit, rows = match_keys(keys, want)
    assert hit.tolist() == [True] * len(keys[::-3]) + [False, False]
    assert np.array_equal(keys[rows[hit]], want[hit])
    # two keys sharing their first 16 hex digits, and one that is not hex: whole keys compared
    twin = np.asarray([keys[0][:16] + b"f" * 24, b"zz" + keys[1][2:]], dtype="S40")
    both = np.concatenate([keys, twin])
    hit, rows = match_keys(both, np.concatenate([want, twin]))
    assert hit.tolist() == [True] * len(keys[::-3]) + [False, False, True, True]
    assert np.array_equal(both[rows[hit]], np.concatenate([want, twin])[hit])
    hit, rows = match_keys(np.asarray([], dtype="S40"), want)
    assert not hit.any() and rows.shape == want.shape


def test_a_damaged_array_header_is_a_corrupt_shard(tmp_path):
    cache = EmbeddingCache(tmp_path, "m")
    keys = ["%040x" % i for i in range(2)]
    cache.store(keys, np.ones((2, 4), np.float32))
    (shard,) = cache.folder.glob("shard-*.npz")
    data = bytearray(shard.read_bytes())
    at = data.index(b"\x93NUMPY", data.index(b"vectors.npy"))
    data[at + 10] = ord(";")  # inside the header's dict literal
    shard.write_bytes(bytes(data))
    with np.load(shard) as z:
        assert stored_member(shard, z.zip, "vectors.npy") is None
    _, found = cache.lookup(keys)
    assert not found.any() and cache.corrupt == [str(shard)] and not shard.exists()
