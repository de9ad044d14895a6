"""The content key that samples triplets: the per-unique-text form gives exactly pandas' row hashes."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.config import ScoreConfig
from ecisem_core.hashing import combine_row_hashes, content_key, content_key_of_texts
from ecisem_core.score import prepare
from tests.helpers import HashEncoder

TEXT = st.text(alphabet=st.sampled_from(list("ab é€\x00\n") + ["\U0001F600"]), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=20), st.integers(0, 10**18),
       st.sampled_from([object, "str"]))
def test_keys_from_unique_texts_are_pandas_row_hashes(rows, seed, dtype):
    frame = pd.DataFrame(rows, columns=["query", "positive", "negative"]).astype(dtype)
    codes, texts = pd.factorize(pd.concat([frame[c] for c in frame.columns], ignore_index=True))
    n = len(frame)
    mine = content_key_of_texts(list(texts), [codes[:n], codes[n:2 * n], codes[2 * n:]], seed)
    assert mine.dtype == np.uint64 and np.array_equal(mine, content_key(frame, seed))


def test_combining_is_pandas_combine_for_any_number_of_columns():
    rng = np.random.default_rng(0)
    for k in (1, 2, 3, 5):
        frame = pd.DataFrame({f"c{i}": rng.integers(0, 2**63, 50, dtype=np.uint64) for i in range(k)})
        hashes = [pd.util.hash_array(frame[c].to_numpy(), hash_key="0123456789123456") for c in frame.columns]
        expected = pd.util.hash_pandas_object(frame, index=False, hash_key="0123456789123456").to_numpy()
        assert np.array_equal(combine_row_hashes(hashes), expected)


@pytest.mark.parametrize("column_kind", ["str", "object", "mixed"])
def test_prepare_samples_the_same_rows_by_either_key(tmp_path, column_kind):
    rng = np.random.default_rng(1)
    words = np.array(["alpha", "beta", "gamma", "delta", "eps"])
    n = 400
    frame = pd.DataFrame({
        "query": [" ".join(rng.choice(words, 3)) for _ in range(n)],
        "positive": [" ".join(rng.choice(words, 6)) for _ in range(n)],
        "negative": [" ".join(rng.choice(words, 6)) for _ in range(n)],
        "source": rng.choice(["a", "b"], n),
    })
    if column_kind == "object":
        frame = frame.astype({"query": object, "positive": object, "negative": object})
    elif column_kind == "mixed":  # not all str: pandas' keys over the frame, as before
        frame["negative"] = frame["negative"].astype(object)
        frame.loc[0, "negative"] = 12345
    cfg = ScoreConfig(sample_size=50)
    prep = prepare(frame, HashEncoder(), cfg, cache_dir=tmp_path)
    keys = content_key(prep.triplets, cfg.seed)
    for code, name in enumerate(prep.source_names):
        rows = np.flatnonzero(prep.source_codes == code)
        salt = np.uint64(zlib.crc32(name.encode("utf-8")))
        expected = np.sort(rows[np.argsort(keys[rows] ^ salt, kind="stable")[:50]])
        assert np.array_equal(prep.sample_rows(cfg)[name], expected)
