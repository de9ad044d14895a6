"""Benchmark of `ecisem score`'s core against the baselines named in DESIGN.md; prints ratios.

1. Throughput with cached embeddings at 10k / 100k / 1M triplets (synthetic text, a hash encoder whose vectors are
   already in the cache, so no forward pass runs): our vectorised prepare + score_prepared, with and without the
   bootstrap/stability step, against a naive per-triplet Python loop computing the same quantities (run on up to
   --naive-max triplets and extrapolated linearly; labelled as such).
2. Peak memory of scoring (``prepare`` + ``score_prepared`` without intervals, the input table already in memory),
   in separate untimed passes: (a) tracemalloc's peak (numpy arrays and Python objects; tracemalloc slows
   allocation, so the timings are taken without it) and (b) the growth of the resident set in a fresh process
   (VmHWM after the run − VmRSS before it, with the high-water mark reset first; everything: numpy, Python, Arrow
   buffers, allocator slack). Each as a multiple of the embedding matrix alone (the ratio reported before) and of
   the issue's denominator, the embedding matrix plus the input text (UTF-8 bytes of the query, positive and
   negative of every row, as the file holds them).
3. Cold cache, real encoder, real data (../shared/data/external/llm-enhanced-dpr): share of end-to-end time
   spent outside the encoder's forward passes, and our total against plain SentenceTransformer.encode of the
   unique texts.

    python benchmarks/bench_score.py                    # all three (1M takes a few minutes)
    python benchmarks/bench_score.py --sizes 10000 100000 --skip-real
    python benchmarks/bench_score.py --sizes                 # only the cold real-data run
"""
from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecisem_core.config import ScoreConfig  # noqa: E402
from ecisem_core.embed.encoders import l2_normalise  # noqa: E402
from ecisem_core.metric.lexical import word_tokenize  # noqa: E402
from ecisem_core.score import prepare, score_prepared  # noqa: E402

DIM = 384


class HashEncoder:
    """Deterministic pseudo-random unit vectors from each text's sha1 (stands in for a model whose vectors are
    cached; its cost never enters the timed runs because the cache is warmed first)."""

    model_id = f"bench-hash-{DIM}"
    role_aware = False
    cacheable = True

    def encode(self, texts, role, progress=False):
        out = np.empty((len(texts), DIM), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(t.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(DIM)
        return l2_normalise(out)

    def tokenize(self, text):
        return word_tokenize(text)


def synthetic(size: int, n_sources: int = 4, seed: int = 0) -> pd.DataFrame:
    """``size`` triplets over size/20 queries and a pool of size/4 passages."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20000)])
    n_q, n_pool = max(size // 20, 10), max(size // 4, 10)

    def texts(n, k):
        idx = rng.integers(0, vocab.size, size=(n, k))
        return [" ".join(row) for row in vocab[idx]]

    queries, positives, pool = texts(n_q, 6), texts(n_q, 40), texts(n_pool, 40)
    qi = rng.integers(0, n_q, size)
    return pd.DataFrame({
        "query_id": [f"q{i}" for i in qi],
        "query": np.asarray(queries, dtype=object)[qi],
        "positive": np.asarray(positives, dtype=object)[qi],
        "negative": np.asarray(pool, dtype=object)[rng.integers(0, n_pool, size)],
        "source": np.asarray([f"s{i}" for i in range(n_sources)])[rng.integers(0, n_sources, size)],
    })


def naive_loop(table: pd.DataFrame, enc: HashEncoder, cfg: ScoreConfig) -> float:
    """The same quantities, one triplet at a time in Python (vectors taken from a dict, like a cache)."""
    texts = pd.unique(pd.concat([table["query"], table["positive"], table["negative"]]))
    vec = dict(zip(texts, enc.encode(list(texts), "passage")))
    passages = set(table["positive"]) | set(table["negative"])
    df: dict[str, int] = {}
    for p in passages:
        for t in set(word_tokenize(p)):
            df[t] = df.get(t, 0) + 1
    n_docs = len(passages)
    t0 = time.perf_counter()
    mats: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for q, p, n, s in zip(table["query"], table["positive"], table["negative"], table["source"]):
        eq, ep, en = vec[q], vec[p], vec[n]
        s_qp, s_qn = float(eq @ ep), float(eq @ en)
        d = s_qp - s_qn
        c = 1 / (1 + math.exp(-d / cfg.tau))
        h = math.exp(-max(0.0, d) / cfg.tau)
        tn, tqp = set(word_tokenize(n)), set(word_tokenize(q)) | set(word_tokenize(p))
        idf = {t: math.log(1 + (n_docs - df.get(t, 0) + 0.5) / (df.get(t, 0) + 0.5)) for t in tn}
        tot = sum(idf.values())
        rho = sum(v for t, v in idf.items() if t not in tqp) / tot if tot else 0.0
        u1 = eq / np.linalg.norm(eq)
        v = ep - (ep @ u1) * u1
        u2 = v / np.linalg.norm(v)
        r = en - (en @ u1) * u1 - (en @ u2) * u2
        r = r / np.linalg.norm(r)
        w = c * h * rho
        mats[s] = mats.get(s, np.zeros((DIM, DIM))) + w * np.outer(r, r)
        counts[s] = counts.get(s, 0) + 1
    kappa = cfg.kappa_for(DIM)
    for s, m in mats.items():
        np.linalg.slogdet(np.eye(DIM) + kappa * m / counts[s])
    return time.perf_counter() - t0


def text_bytes(table: pd.DataFrame) -> int:
    """UTF-8 bytes of the query, positive and negative of every row (the input text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return sum(int(pc.sum(pc.binary_length(pa.array(table[c], type=pa.string()))).as_py() or 0)
               for c in ("query", "positive", "negative"))


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def rss_probe(size: int, cache_dir: str) -> None:
    """In this (fresh) process: warm up on 200 triplets, build the table, then print the resident-set growth of
    prepare + score_prepared (no intervals), reading the embeddings from the warm cache."""
    enc, cfg = HashEncoder(), ScoreConfig()
    with tempfile.TemporaryDirectory() as tiny:  # lazy imports, BLAS buffers, worker threads: not the table's cost
        score_prepared(prepare(synthetic(200, seed=1), enc, cfg, cache_dir=tiny), cfg, uncertainty=False)
    table = synthetic(size)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")  # reset VmHWM (the peak resident set) to the current resident set
    before = _status_bytes("VmRSS")
    prep = prepare(table, enc, cfg, cache_dir=cache_dir)
    score_prepared(prep, cfg, uncertainty=False)
    print(_status_bytes("VmHWM") - before)


def rss_growth(size: int, cache_dir: str) -> int | None:
    """:func:`rss_probe` in a fresh interpreter; None where /proc's peak reset is not available."""
    import subprocess

    try:
        out = subprocess.run([sys.executable, __file__, "--rss-probe", str(size), "--cache", cache_dir],
                             capture_output=True, text=True, check=True).stdout
        return int(out.split()[-1])
    except (subprocess.CalledProcessError, ValueError, IndexError, OSError):
        return None


def bench_cached(size: int, naive_max: int, cache_dir: str) -> dict:
    table = synthetic(size)
    enc = HashEncoder()
    cfg = ScoreConfig()
    prepare(table, enc, cfg, cache_dir=cache_dir)  # warm the cache (untimed)
    t0 = time.perf_counter()
    prep = prepare(table, enc, cfg, cache_dir=cache_dir)
    t_prep = time.perf_counter() - t0
    t1 = time.perf_counter()
    score_prepared(prep, cfg, uncertainty=False)
    t_fast = time.perf_counter() - t1
    t2 = time.perf_counter()
    res = score_prepared(prep, cfg, uncertainty=True)
    t_full = time.perf_counter() - t2
    emb_bytes, unique = prep.embedded.matrix.nbytes, prep.embedded.matrix.shape[0]
    del prep
    # peak memory in a separate, untimed pass: tracemalloc slows every allocation (most of all the many small
    # Python objects of tokenising), so timing under it would overstate the time
    tracemalloc.start()
    traced = prepare(table, enc, cfg, cache_dir=cache_dir)
    score_prepared(traced, cfg, uncertainty=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    rss = rss_growth(size, cache_dir)
    text = text_bytes(table)
    m = min(size, naive_max)
    t_naive = naive_loop(table.iloc[:m], enc, cfg) * size / m if m > 0 else float("nan")  # --naive-max 0: not run
    return {
        "triplets": size, "unique_texts": unique,
        "prepare_s (cache hit)": t_prep, "score_s (no CI)": t_fast, "uncertainty_s": t_full - t_fast,
        "total_s (with CI)": t_prep + t_full, "total_s (no CI)": t_prep + t_fast,
        "naive_loop_s" + (" (extrapolated)" if m < size else ""): t_naive,
        "speed-up vs naive (no CI)": t_naive / (t_prep + t_fast),
        "embedding matrix MB": emb_bytes / 1e6, "input text MB (UTF-8)": text / 1e6,
        "peak MB (tracemalloc)": peak / 1e6,
        "peak_mem / embedding matrix (tracemalloc; the ratio reported before)": peak / emb_bytes,
        "peak_mem / (embedding matrix + input text) (tracemalloc; the issue's target <= 2)": peak / (emb_bytes + text),
        "peak RSS growth MB (fresh process)": rss / 1e6 if rss is not None else "n/a",
        "peak RSS growth / (embedding matrix + input text)": rss / (emb_bytes + text) if rss is not None else "n/a",
        "timings": {k: round(v, 3) for k, v in res.timings.items()},
    }


def bench_real(n_queries: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from ecisem_core.embed.encoders import default_encoder
    from ecisem_core.io.load import read_triplets

    d = ROOT.parent / "shared" / "data" / "external" / "llm-enhanced-dpr"
    table = read_triplets([d / "bm25_train.csv", d / "llm_generated_negatives.jsonl"]).triplets
    queries = table["query"].drop_duplicates().head(n_queries)
    table = table[table["query"].isin(queries)]
    cfg = ScoreConfig()
    enc = default_encoder()
    enc.model  # load outside the timed region for both (model loading is not a forward pass)
    with tempfile.TemporaryDirectory() as cold:
        t0 = time.perf_counter()
        prep = prepare(table, enc, cfg, cache_dir=cold)
        res = score_prepared(prep, cfg)
        total = time.perf_counter() - t0
    forward = prep.timings["encoder_forward"]
    texts = list(pd.unique(pd.concat([table["query"], table["positive"], table["negative"]])))
    model = SentenceTransformer(str(enc.name_or_path), device="cpu")
    t0 = time.perf_counter()
    model.encode(texts, batch_size=64)
    plain = time.perf_counter() - t0
    return {"triplets": len(table), "unique_texts": len(texts), "ecisem_total_s": total,
            "encoder_forward_s": forward, "share_outside_forward": (total - forward) / total,
            "plain_encode_s": plain, "ecisem / plain encode": total / plain, "sources": res.sources.source.tolist(),
            "timings": {k: round(v, 3) for k, v in res.timings.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000],
                    help="triplet counts of the cached runs (none: only the real-data run)")
    ap.add_argument("--naive-max", type=int, default=20_000,
                    help="triplets the naive loop runs on (extrapolated to the size; 0: not run)")
    ap.add_argument("--real-queries", type=int, default=300)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--rss-probe", type=int, help=argparse.SUPPRESS)  # internal: one size, in a fresh process
    ap.add_argument("--cache", help="embedding cache folder to keep between runs (default: a temporary one; "
                                    "the untimed warm-up then embeds every text again)")
    args = ap.parse_args()
    if args.rss_probe:
        rss_probe(args.rss_probe, args.cache)
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as temporary:
        cache = args.cache or temporary
        for size in args.sizes:
            r = bench_cached(size, args.naive_max, cache)
            print("\n".join(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}" for k, v in r.items()))
            print()
    if not args.skip_real:
        r = bench_real(args.real_queries)
        print("cold cache, default encoder, real data:")
        print("\n".join(f"  {k}: {v:.3f}" if isinstance(v, float) else f"  {k}: {v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
