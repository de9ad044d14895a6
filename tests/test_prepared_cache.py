"""The disk cache of prepared per-triplet terms (ecisem_core/prepared_cache.py): a hit gives the numbers of a fresh
``prepare`` without computing the terms or encoding; any input that could change them misses; a damaged, partial or
foreign entry is computed again; nothing is stored for inputs it cannot key."""
from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest

import ecisem_core.prepared_cache as pc
from ecisem_core.config import ScoreConfig
from ecisem_core.hashing import file_sha256
from ecisem_core.prepared_cache import prepare_cached
from ecisem_core.score import prepare, score_prepared
from helpers import HashEncoder, synthetic_triplets


@pytest.fixture(autouse=True)
def embedding_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(tmp_path / "embeddings"))


def entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def refuse_prepare(monkeypatch):
    def no(*a, **k):
        raise AssertionError("prepared again")
    monkeypatch.setattr(pc, "prepare", no)


def same_prepared(a, b):
    for name in ("s_qp", "s_qn", "s_pn", "source_codes", "query_codes"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.source_names == b.source_names
    assert a.flags.equals(b.flags) and (a.flags.dtypes == b.flags.dtypes).all()
    assert (a.tokens.x != b.tokens.x).nnz == 0 and a.tokens.vocab.tolist() == b.tokens.vocab.tolist()
    assert np.array_equal(a.tokens.idf, b.tokens.idf) and a.tokens.tokenize is b.tokens.tokenize
    cfg = ScoreConfig(sample_size=25)
    ra, rb = (score_prepared(p, cfg, uncertainty=False) for p in (a, b))
    assert ra.sources.equals(rb.sources) and ra.triplets.equals(rb.triplets)


def test_a_hit_is_a_fresh_prepare_without_computing_or_encoding(tmp_path, monkeypatch):
    t, folder = synthetic_triplets(30), tmp_path / "prepared"
    cfg = ScoreConfig(sample_size=25)
    first = prepare_cached(t, HashEncoder(cacheable=True), folder, cfg)
    assert [n.rsplit(".", 1)[1] for n in entries(folder)] == ["arrow", "json", "npz"]
    refuse_prepare(monkeypatch)
    enc = HashEncoder(cacheable=True)
    hit = prepare_cached(t, enc, folder, cfg)
    assert enc.encoded == 0  # the embeddings come from the embedding cache
    assert "prepared_cache" in hit.timings and "flags" not in hit.timings
    same_prepared(hit, first)
    with monkeypatch.context() as m:  # and the miss before it was a plain prepare
        m.setattr(pc, "prepare", prepare)
        same_prepared(hit, prepare(t, HashEncoder(cacheable=True), cfg))
    # the sample and ρ come from the entry: the same rows, the same residual directions
    for name, (rows, r) in first.sample(cfg).items():
        got_rows, got_r = hit.sample(cfg)[name]
        assert np.array_equal(rows, got_rows) and np.array_equal(r, got_r)
    assert np.array_equal(hit.rho(cfg), first.rho(cfg))


@pytest.mark.parametrize("change", ["text", "id column", "encoder", "sample", "seed", "tokenizer", "code"])
def test_anything_the_terms_depend_on_misses(tmp_path, monkeypatch, change):
    t, folder = synthetic_triplets(20), tmp_path / "prepared"
    cfg = ScoreConfig(sample_size=25)
    prepare_cached(t, HashEncoder(cacheable=True), folder, cfg)
    enc = HashEncoder(cacheable=True)
    if change == "text":
        t.loc[3, "negative"] = t.loc[3, "negative"] + " more"
    elif change == "id column":
        t.loc[3, "query_id"] = "q-other"
    elif change == "encoder":
        enc = HashEncoder(cacheable=True, model_id="another-model")
    elif change == "sample":
        cfg = ScoreConfig(sample_size=24)
    elif change == "seed":
        cfg = ScoreConfig(sample_size=25, seed=1)
    elif change == "tokenizer":
        cfg = ScoreConfig(sample_size=25, tokenizer="encoder")
    else:
        monkeypatch.setattr(pc, "code_fingerprint", lambda: "other code")
    calls = []
    real = pc.prepare
    monkeypatch.setattr(pc, "prepare", lambda *a, **k: calls.append(1) or real(*a, **k))
    prep = prepare_cached(t, enc, folder, cfg)
    assert calls == [1]
    same_prepared(prep, prepare(t, HashEncoder(cacheable=True, model_id=enc.model_id), cfg))


@pytest.mark.parametrize("damage", ["truncated arrays", "no json", "bad json", "json not an object",
                                    "flags of another table", "flags of a table of the same length",
                                    "other embeddings", "pickled array", "rows out of range"])
def test_a_damaged_or_foreign_entry_is_computed_again(tmp_path, monkeypatch, damage):
    t, folder = synthetic_triplets(20), tmp_path / "prepared"
    cfg = ScoreConfig(sample_size=25)
    good = prepare_cached(t, HashEncoder(cacheable=True), folder, cfg)
    stem = next(folder.glob("*.json")).with_suffix("")
    arrays, flags, meta = stem.with_suffix(".npz"), stem.with_suffix(".arrow"), stem.with_suffix(".json")
    if damage == "truncated arrays":
        arrays.write_bytes(arrays.read_bytes()[:200])
    elif damage == "no json":
        meta.unlink()
    elif damage == "bad json":
        meta.write_text("{not json", encoding="utf-8")
    elif damage == "json not an object":
        meta.write_text("[]", encoding="utf-8")
    elif damage in ("flags of another table", "flags of a table of the same length"):
        other = tmp_path / "other"
        size = 21 if damage == "flags of another table" else 20  # 3 rows a query: 63 or the same 60 rows
        prepare_cached(synthetic_triplets(size, seed=3), HashEncoder(cacheable=True), other, cfg)
        flags.write_bytes(next(other.glob("*.arrow")).read_bytes())
    elif damage == "rows out of range":  # a consistent entry (files re-hashed) whose numbers cannot be this table's
        with np.load(arrays) as z:
            kept = {k: z[k] for k in z.files}
        kept["sample_rows"] = kept["sample_rows"] + 10_000
        with open(arrays, "wb") as f:
            np.savez(f, **kept)
        m = json.loads(meta.read_text(encoding="utf-8"))
        m["files"][".npz"] = file_sha256(arrays)
        meta.write_text(json.dumps(m), encoding="utf-8")
    elif damage == "other embeddings":
        m = json.loads(meta.read_text(encoding="utf-8"))
        meta.write_text(json.dumps({**m, "embedded": "0" * 64}), encoding="utf-8")
    else:  # an object array needs pickle to load: refused, never unpickled
        with np.load(arrays) as z:
            kept = {k: z[k] for k in z.files}
        with open(arrays, "wb") as f:
            np.savez(f, **{**kept, "rho": np.array([object()] * 3, dtype=object)})
    calls = []
    real = pc.prepare
    monkeypatch.setattr(pc, "prepare", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = prepare_cached(t, HashEncoder(cacheable=True), folder, cfg)
    assert calls == [1]
    same_prepared(again, good)
    refuse_prepare(monkeypatch)  # and the entry written again is whole
    same_prepared(prepare_cached(t, HashEncoder(cacheable=True), folder, cfg), good)


def test_vectors_encoded_again_differently_miss(tmp_path, monkeypatch):
    """The embedding cache cleared and the texts encoded again into other vectors under the same model id: the
    entry no longer matches the embeddings and is computed again."""
    t, folder = synthetic_triplets(12), tmp_path / "prepared"
    prepare_cached(t, HashEncoder(cacheable=True, model_id="m"), folder)
    shutil.rmtree(tmp_path / "embeddings")

    class Shifted(HashEncoder):
        def encode(self, texts, role, progress=False):
            v = super().encode(texts, role, progress) + np.float32(1e-3)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

    calls = []
    real = pc.prepare
    monkeypatch.setattr(pc, "prepare", lambda *a, **k: calls.append(1) or real(*a, **k))
    prep = prepare_cached(t, Shifted(cacheable=True, model_id="m"), folder)
    assert calls == [1]
    assert np.array_equal(prep.s_qp, prepare(t, Shifted(cacheable=True, model_id="m"), use_cache=False).s_qp)


def test_inputs_it_cannot_key_are_prepared_and_not_stored(tmp_path):
    t, folder = synthetic_triplets(10), tmp_path / "prepared"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("w1 w2 w3\nw4 w5\n", encoding="utf-8")
    prepare_cached(t, HashEncoder(cacheable=False), folder)  # vectors the embedding cache does not keep
    prepare_cached(t, HashEncoder(cacheable=True), folder, ScoreConfig(idf_corpus=str(corpus)))
    odd = t.assign(extra=[[i] for i in range(len(t))])  # cells pandas cannot hash
    prepare_cached(odd, HashEncoder(cacheable=True), folder)
    assert entries(folder) == []


def test_an_unwritable_folder_leaves_the_result_alone(tmp_path):
    t = synthetic_triplets(10)
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    prep = prepare_cached(t, HashEncoder(cacheable=True), blocker / "prepared")
    same_prepared(prep, prepare(t, HashEncoder(cacheable=True)))


def test_only_the_newest_entries_are_kept_and_nothing_else_is_touched(tmp_path, monkeypatch):
    monkeypatch.setattr(pc, "KEEP", 2)
    folder = tmp_path / "prepared"
    folder.mkdir()
    mine = [folder / "notes.json", folder / "data.npz"]  # not entries: never removed
    for p in mine:
        p.write_text("{}", encoding="utf-8")
    stale = [folder / f"{'a' * 40}.npz", folder / f".{'b' * 40}.json.tmp-1-abcd.json"]  # a killed writer's leftovers
    for p in stale:
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 2 * pc.STALE_S,) * 2)
    for seed in range(3):
        t = synthetic_triplets(8, seed=seed)
        prepare_cached(t, HashEncoder(cacheable=True), folder)
        for p in folder.glob(f"{pc.entry_name(t, HashEncoder(cacheable=True), ScoreConfig())}.*"):
            os.utime(p, (1_000_000 + seed,) * 2)  # written in this order, whatever the file system's clock
    assert all(p.exists() for p in mine) and not any(p.exists() for p in stale)
    assert len([n for n in entries(folder) if pc.ENTRY.fullmatch(n.split(".")[0])]) == 6
    newest = pc.entry_name(synthetic_triplets(8, seed=2), HashEncoder(cacheable=True), ScoreConfig())
    oldest = pc.entry_name(synthetic_triplets(8, seed=0), HashEncoder(cacheable=True), ScoreConfig())
    assert f"{newest}.json" in entries(folder) and f"{oldest}.json" not in entries(folder)
