"""Triplet files for the dashboard benchmark, mined from ``../shared/data/external/llm-enhanced-dpr`` (MS MARCO).

The third-party files are read in place and never copied into the project; the outputs go to a folder you
choose (a temporary folder by default). Two sizes:

* ``standin`` — a demo-sized file (a few thousand triplets, the demo's columns and sources) used while the
  bundled demo is not built yet;
* ``big`` — ≥ 100k triplets for the slider / UMAP timings of DESIGN.md.

Sources: ``bm25`` (bm25s over the passage pool, top non-gold hits), ``dense`` (nearest pool passages by the
TF-IDF/LSA encoder: fast, and a different family from the scoring encoder), ``random`` (seeded pool draws),
``llm`` (the repo's LLM-generated negatives, preamble lines included: real dirty data), and hybrids built with
:func:`ecisem_core.downstream.hybrid.add_hybrids`.

    python benchmarks/bench_data.py standin /tmp/standin
    python benchmarks/bench_data.py big /tmp/big
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DPR = ROOT.parent / "shared" / "data" / "external" / "llm-enhanced-dpr"
COLUMNS = ["query_id", "query", "positive", "negative", "source", "negative_id", "fn_label", "topic"]


def _base() -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """(queries with gold passage, passage pool, LLM negatives)."""
    gold = pd.read_csv(DPR / "bm25_train.csv").rename(columns={"query_text": "query", "gold_passage": "positive"})
    gold = gold.drop_duplicates("query").reset_index(drop=True)
    dev = pd.read_csv(DPR / "msmarco_dev_beir.tsv", sep="\t")
    pool = list(dict.fromkeys([*dev["gold_passage"].astype(str), *gold["hard_negative"].astype(str),
                               *gold["positive"].astype(str)]))
    llm = pd.read_json(DPR / "llm_generated_negatives.jsonl", lines=True)
    llm = llm.rename(columns={"query_text": "query", "gold_passage": "positive", "hard_negative": "negative"})
    return gold, pool, llm


def _top_k(scores: np.ndarray, k: int, forbid: np.ndarray) -> np.ndarray:
    scores = scores.copy()
    scores[np.arange(len(forbid)), forbid] = -np.inf
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.take_along_axis(scores, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def build(n_queries: int, k: int, k_llm: int, hybrids: list[str], seed: int = 0) -> pd.DataFrame:
    """Triplets over the first ``n_queries`` queries, ``k`` negatives each for bm25/dense/random."""
    import bm25s

    from ecisem_core.embed.encoders import TfidfLsaEncoder
    from ecisem_core.hashing import short_id
    from ecisem_core.downstream.hybrid import add_hybrids

    gold, pool, llm = _base()
    gold = gold.iloc[:n_queries]
    index = {t: i for i, t in enumerate(pool)}
    gold_idx = np.array([index[t] for t in gold["positive"]])
    rng = np.random.default_rng(seed)
    rows = []

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(pool, stopwords="en", show_progress=False), show_progress=False)
    hits, _ = retriever.retrieve(bm25s.tokenize(list(gold["query"]), stopwords="en", show_progress=False),
                                 k=k + 1, show_progress=False)
    enc = TfidfLsaEncoder(n_components=128).fit([*pool, *gold["query"]])
    sims = enc.encode(list(gold["query"]), "query") @ enc.encode(pool, "passage").T
    dense = _top_k(sims, k, gold_idx)
    for qi, q in enumerate(gold.itertuples()):
        bm = [h for h in hits[qi] if h != gold_idx[qi]][:k]
        rand = rng.choice(np.delete(np.arange(len(pool)), gold_idx[qi]), size=k, replace=False)
        for source, negs in (("bm25", bm), ("dense", dense[qi]), ("random", rand)):
            rows += [(q.query, q.positive, pool[j], source) for j in negs]
    lm = llm[llm["query"].isin(set(gold["query"]))].groupby("query").head(k_llm)
    rows += [(r.query, r.positive, r.negative, "llm") for r in lm.itertuples()]
    t = pd.DataFrame(rows, columns=["query", "positive", "negative", "source"])
    t = add_hybrids(t, hybrids, seed=seed)
    t["query_id"] = [short_id("q", s) for s in t["query"]]
    t["negative_id"] = [short_id("n", s) for s in t["negative"]]
    t["fn_label"] = np.nan
    t["topic"] = "msmarco"
    return t[COLUMNS]


def write_jsonl(table: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for rec in table.to_dict(orient="records"):
            rec["fn_label"] = None if pd.isna(rec["fn_label"]) else rec["fn_label"]
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return path


def standin(out_dir: str | Path) -> Path:
    """Demo-sized stand-in: 200 queries × 3 negatives per mined source + 3 LLM + two hybrids (~3.6k rows)."""
    t = build(200, 3, 3, ["bm25+dense", "dense+llm"])
    return write_jsonl(t, Path(out_dir) / "demo_triplets.jsonl")


def big(out_dir: str | Path) -> Path:
    """≥ 100k triplets: 1000 queries × 13 negatives per mined source + LLM + four hybrids."""
    t = build(1000, 13, 3, ["bm25+dense", "dense+random", "dense+llm", "bm25+llm"])
    assert len(t) >= 100_000, len(t)
    return write_jsonl(t, Path(out_dir) / "big_triplets.jsonl")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["standin", "big"])
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    path = (standin if args.kind == "standin" else big)(args.out_dir)
    print(path, sum(1 for _ in path.open(encoding="utf-8")), "rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
