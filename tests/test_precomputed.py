"""Tests of ecisem_core.embed.precomputed: formats, round trips, and refusal of pickles and malformed matrices."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hash, text_hashes
from ecisem_core.embed.precomputed import PICKLE_PROBLEM, read_embeddings, write_embeddings

TEXTS = ["what is a cat", "A cat is a small feline.", "Dogs bark.", "Paris is in France."]
HASHES = text_hashes(TEXTS)
MATRIX = np.arange(12, dtype=np.float64).reshape(4, 3) / 7.0


class _Trap:
    """Unpickling this creates ``marker``: the file must never appear."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("ext", ["npz", "parquet", "npy"])
def test_write_read_round_trip(tmp_path, ext):
    path = write_embeddings(tmp_path / f"vec.{ext}", HASHES, MATRIX)
    hashes, m = read_embeddings(path)
    assert hashes == HASHES
    assert m.dtype == np.float32 and m.shape == (4, 3)
    np.testing.assert_array_equal(m, MATRIX.astype(np.float32))
    if ext == "npy":
        assert (tmp_path / "vec.keys.txt").read_text().split() == HASHES


def test_npz_with_texts_is_hashed(tmp_path):
    np.savez(tmp_path / "t.npz", text=np.array(TEXTS), embedding=MATRIX.astype(np.float16))
    hashes, m = read_embeddings(tmp_path / "t.npz")
    assert hashes == [text_hash(t) for t in TEXTS]
    assert m.dtype == np.float32
    np.testing.assert_allclose(m, MATRIX, atol=1e-3)


def test_parquet_text_column_double_and_fixed_size_lists(tmp_path):
    pq.write_table(pa.table({"text": TEXTS, "embedding": MATRIX.tolist()}), tmp_path / "a.parquet")
    hashes, m = read_embeddings(tmp_path / "a.parquet")
    assert hashes == HASHES and m.dtype == np.float32
    np.testing.assert_allclose(m, MATRIX, rtol=1e-6)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(MATRIX.reshape(-1), pa.float32()), 3)
    pq.write_table(pa.table({"text_hash": [h.upper() for h in HASHES], "embedding": fixed}), tmp_path / "f.parquet")
    hashes, m = read_embeddings(tmp_path / "f.parquet")
    assert hashes == HASHES  # upper-case hex is accepted and normalised
    np.testing.assert_allclose(m, MATRIX, rtol=1e-6)


def test_npy_with_texts_jsonl_sidecar(tmp_path):
    np.save(tmp_path / "e.npy", MATRIX)
    (tmp_path / "e.texts.jsonl").write_text("".join(json.dumps(t) + "\r\n" for t in TEXTS), encoding="utf-8")
    hashes, m = read_embeddings(tmp_path / "e.npy")
    assert hashes == HASHES and m.shape == (4, 3)


def test_pickle_disguised_as_npy_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "UNPICKLED"
    _Trap.marker = str(marker)
    for name, payload in [("x.npy", pickle.dumps({"a": 1})), ("trap.npy", pickle.dumps(_Trap())),
                          ("trap0.npy", pickle.dumps(_Trap(), protocol=0)), ("trap.npz", pickle.dumps(_Trap()))]:
        (tmp_path / name).write_bytes(payload)
        (tmp_path / name).with_suffix(".keys.txt").write_text(HASHES[0] + "\n")
        with pytest.raises(InputError, match="pickle") as err:
            read_embeddings(tmp_path / name)
        assert err.value.problem == PICKLE_PROBLEM and err.value.path == str(tmp_path / name)
    assert not marker.exists()


def test_object_arrays_are_refused(tmp_path):
    marker = tmp_path / "UNPICKLED"
    _Trap.marker = str(marker)
    np.save(tmp_path / "o.npy", np.array([[_Trap(), 1.0]], dtype=object), allow_pickle=True)
    (tmp_path / "o.keys.txt").write_text(HASHES[0] + "\n")
    with pytest.raises(InputError, match=r"contains Python objects \(pickle\); refusing to load"):
        read_embeddings(tmp_path / "o.npy")
    np.savez(tmp_path / "o.npz", text_hash=np.array(HASHES[:1]), embedding=np.array([[_Trap()]], dtype=object))
    with pytest.raises(InputError, match="refusing to load"):
        read_embeddings(tmp_path / "o.npz")
    assert not marker.exists()


def test_key_count_mismatch_names_both_counts(tmp_path):
    np.save(tmp_path / "m.npy", MATRIX)
    (tmp_path / "m.keys.txt").write_text("\n".join(HASHES[:3]) + "\n")
    with pytest.raises(InputError, match="m.keys.txt has 3 keys but the matrix has 4 rows"):
        read_embeddings(tmp_path / "m.npy")
    np.savez(tmp_path / "m.npz", text_hash=np.array(HASHES[:2]), embedding=MATRIX)
    with pytest.raises(InputError, match="2 keys but 4 embedding rows"):
        read_embeddings(tmp_path / "m.npz")


def test_ragged_parquet_lists_name_the_row(tmp_path):
    rows = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8]]
    pq.write_table(pa.table({"text_hash": HASHES[:3], "embedding": rows}), tmp_path / "r.parquet")
    with pytest.raises(InputError, match="row 3 has 2 values but row 1 has 3") as err:
        read_embeddings(tmp_path / "r.parquet")
    assert err.value.line == 3


def test_nan_inf_and_non_numeric_are_refused(tmp_path):
    bad = MATRIX.copy()
    bad[2, 1] = np.inf
    np.savez(tmp_path / "i.npz", text_hash=np.array(HASHES), embedding=bad)
    with pytest.raises(InputError, match="NaN or inf") as err:
        read_embeddings(tmp_path / "i.npz")
    assert err.value.line == 3
    pq.write_table(pa.table({"text_hash": HASHES[:2], "embedding": [[1.0, None], [1.0, 2.0]]}), tmp_path / "n.parquet")
    with pytest.raises(InputError, match="null") as err:
        read_embeddings(tmp_path / "n.parquet")
    assert err.value.line == 1
    pq.write_table(pa.table({"text_hash": HASHES[:1], "embedding": [["a", "b"]]}), tmp_path / "s.parquet")
    with pytest.raises(InputError, match="non-numeric"):
        read_embeddings(tmp_path / "s.parquet")
    np.savez(tmp_path / "s.npz", text_hash=np.array(HASHES[:1]), embedding=np.array([["a", "b"]]))
    with pytest.raises(InputError, match="must be numbers"):
        read_embeddings(tmp_path / "s.npz")
    np.savez(tmp_path / "v.npz", text_hash=np.array(HASHES[:3]), embedding=np.ones(3))
    with pytest.raises(InputError, match="2-D"):
        read_embeddings(tmp_path / "v.npz")


def test_bad_keys_and_missing_pieces(tmp_path):
    np.save(tmp_path / "k.npy", MATRIX[:2])
    (tmp_path / "k.keys.txt").write_text(HASHES[0] + "\nnot-a-hash\n")
    with pytest.raises(InputError, match="'not-a-hash' is not a text hash") as err:
        read_embeddings(tmp_path / "k.npy")
    assert err.value.line == 2
    np.save(tmp_path / "lonely.npy", MATRIX)
    with pytest.raises(InputError, match="lonely.keys.txt"):
        read_embeddings(tmp_path / "lonely.npy")
    np.savez(tmp_path / "nokey.npz", embedding=MATRIX)
    with pytest.raises(InputError, match="missing array 'text_hash'"):
        read_embeddings(tmp_path / "nokey.npz")
    pq.write_table(pa.table({"text_hash": HASHES}), tmp_path / "noemb.parquet")
    with pytest.raises(InputError, match="missing column 'embedding'"):
        read_embeddings(tmp_path / "noemb.parquet")
    (tmp_path / "fake.parquet").write_text("text_hash,embedding\n")
    with pytest.raises(InputError, match="not a Parquet file"):
        read_embeddings(tmp_path / "fake.parquet")
    with pytest.raises(InputError, match="file not found"):
        read_embeddings(tmp_path / "absent.npz")
    with pytest.raises(InputError, match="unknown embeddings format"):
        read_embeddings(tmp_path / "k.keys.txt")


def test_write_refuses_bad_input(tmp_path):
    with pytest.raises(InputError, match="NaN or inf"):
        write_embeddings(tmp_path / "a.npz", HASHES, np.full((4, 3), np.nan))
    with pytest.raises(InputError, match="3 keys but 4 embedding rows"):
        write_embeddings(tmp_path / "a.npz", HASHES[:3], MATRIX)
    with pytest.raises(InputError, match="not a text hash"):
        write_embeddings(tmp_path / "a.npz", TEXTS, MATRIX)
    with pytest.raises(InputError, match="unknown embeddings format"):
        write_embeddings(tmp_path / "a.h5", HASHES, MATRIX)
    assert not (tmp_path / "a.npz").exists()
