"""Does the score predict training? A validation study on real data, rerunnable and resumable.

    python benchmarks/validity_study.py train      # mine, fine-tune, evaluate (hours on 2 CPU cores; resumable)
    python benchmarks/validity_study.py analyse    # scores, agreement, presets (minutes; needs the runs)

Data (read from ../shared/data/external, never copied):
- training queries: the 1,000 MS MARCO training queries of ``llm-enhanced-dpr/bm25_train.csv`` with their gold
  passage;
- in-domain evaluation: :data:`ID_QUERIES` queries of ``msmarco_dev_beir.tsv`` (seeded), their gold passages and, as
  hard distractors, each query's top :data:`ID_DISTRACTORS` BM25 and top :data:`ID_DISTRACTORS` dense (default
  encoder) neighbours from the rest of the dev passages;
- the mining pool: every other dev passage (the evaluation queries' golds removed);
- out-of-domain evaluation: the full MED and CISI collections (BEIR layout, every document, every judged query).

Sources (one negative per query): the given BM25 negatives (``bm25_given``) and LLM-generated negatives
(``llm``: generated passage 2 of each query, passage 1 being a boilerplate preamble), and, mined by
``ecisem_core.downstream.mining`` from the pool: ``bm25``, ``bm25_10-50``, ``dense``, ``dense_10-50``,
``dense-percpos``, ``random``; and four 50/50 hybrids (:data:`HYBRIDS`).

Regimes (:data:`REGIMES`): ``adapt`` fine-tunes the trained all-MiniLM-L6-v2 (500 triplets per source, the
queries shared by all sources: a 6-layer step costs ~5x a 1-layer one on 2 CPU cores, and this keeps the study
within its 3-hour budget); ``weak`` starts from its first transformer layer only (a model that training must turn
into a retriever; ~1,000 triplets per source). MultipleNegativesRankingLoss, one
epoch, batch 32, 128 tokens, seeds :data:`SEEDS`. Each (regime, source, seed) run is one JSON file under
``benchmarks/results/validity_study/runs/`` (committed), keyed by everything that determines it: a rerun skips
finished runs.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecisem_core.downstream import mining  # noqa: E402
from ecisem_core.downstream.runs import select_triplets, source_hash  # noqa: E402
from ecisem_core.embed.encoders import default_encoder  # noqa: E402
from ecisem_core.io.evaldata import EvalData, load_beir, load_pairs, normalise_query  # noqa: E402
from ecisem_core.downstream.retrieval import evaluate_model  # noqa: E402
from ecisem_core.downstream.training import TrainConfig, fine_tune  # noqa: E402

EXTERNAL = ROOT.parent / "shared" / "data" / "external"
DPR = EXTERNAL / "llm-enhanced-dpr"
OUT = ROOT / "benchmarks" / "results" / "validity_study"
WORK = ROOT / ".study_work"
"""Derived third-party text (mined sources): kept out of git (.gitignore)."""
ID_QUERIES = 300
ID_DISTRACTORS = 5
SEEDS = (0, 1)
MINED = ("bm25", "bm25:10-50", "dense", "dense:10-50", "dense-percpos", "random")
HYBRIDS = (("bm25", "dense"), ("dense", "llm"), ("bm25_given", "llm"), ("dense_10-50", "random"))
REGIMES: dict[str, dict[str, Any]] = {
    "adapt": {"layers": None, "lr": 2e-5, "per_source": 500},
    "weak": {"layers": 1, "lr": 1e-4},
}
EVALS = ("msmarco_id", "med", "cisi")
REGIME_EVALS: dict[str, tuple[str, ...]] = {"adapt": ("med", "cisi"), "weak": EVALS}
"""Evaluation sets per regime. The adapted all-MiniLM-L6-v2 already reaches nDCG@10 0.955 on the in-domain set
(measured; it was trained on MS MARCO), a ceiling that leaves no room to rank sources, so that regime is evaluated
out of domain only (and the 2,700 in-domain texts are not encoded 25 times)."""
STUDY_VERSION = 1


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------- data


def dev_split(seed: int = 0) -> tuple[EvalData, list[str], list[str]]:
    """(dev pairs, held-out in-domain query ids, pool passages = dev passages minus the held-out golds)."""
    dev = load_pairs(DPR / "msmarco_dev_beir.tsv")
    ids = sorted(dev.queries)
    held = sorted(np.random.default_rng(seed).choice(ids, size=ID_QUERIES, replace=False).tolist())
    gold = {d for q in held for d in dev.qrels[q]}
    pool = [t for d, t in sorted(dev.corpus.items()) if d not in gold]
    return dev, held, pool


def in_domain_eval(dev: EvalData, held: list[str], pool: list[str], dense: mining.DenseScorer) -> EvalData:
    """Held-out dev queries; corpus = their golds + top-k BM25 and dense neighbours from the pool."""
    golds = [next(iter(sorted(dev.qrels[q]))) for q in held]
    inp = mining.MiningInput(held, [dev.queries[q] for q in held], [dev.corpus[d] for d in golds], pool)
    near = mining.mine(inp, [mining.parse_strategy("bm25"), mining.parse_strategy("dense")], k=ID_DISTRACTORS,
                       dense=dense)
    corpus = {d: dev.corpus[d] for q in held for d in dev.qrels[q]}
    for text in near["negative"]:
        corpus.setdefault("x" + hashlib.sha1(text.encode()).hexdigest()[:12], text)
    return EvalData({q: dev.queries[q] for q in held}, corpus, {q: dev.qrels[q] for q in held},
                    name=f"MS MARCO dev, {ID_QUERIES} queries + BM25/dense distractors")


def given_sources(train: pd.DataFrame) -> pd.DataFrame:
    """bm25_given and llm (generated passage 2), with the training query ids."""
    gen = pd.read_json(DPR / "llm_generated_negatives.jsonl", lines=True)
    gen = gen[gen["negative_num"] == 2]
    ids = dict(zip(train["query"], train["query_id"]))
    rows = []
    for src, q, p, n in ([("bm25_given", *r) for r in pd.read_csv(DPR / "bm25_train.csv").itertuples(index=False)]
                         + [("llm", r.query_text, r.gold_passage, r.hard_negative) for r in gen.itertuples()]):
        if q in ids and isinstance(n, str) and n.strip():
            rows.append({"query_id": ids[q], "query": q, "positive": p, "negative": n, "source": src})
    return pd.DataFrame(rows)


def build_sources(pool: list[str], held_queries: list[str], dense: mining.DenseScorer) -> pd.DataFrame:
    """Every source's triplets (one negative per training query; training queries equal to an evaluation query
    removed)."""
    pairs = load_pairs(DPR / "bm25_train.csv")
    inp = mining.input_from_eval(pairs, pool)
    held = {normalise_query(q) for q in held_queries}
    keep = [i for i, q in enumerate(inp.queries) if normalise_query(q) not in held]
    inp = mining.MiningInput([inp.query_ids[i] for i in keep], [inp.queries[i] for i in keep],
                             [inp.positives[i] for i in keep], pool)
    mined = mining.mine(inp, [mining.parse_strategy(s) for s in MINED], dense=dense, progress=True)
    train = pd.DataFrame({"query_id": inp.query_ids, "query": inp.queries})
    table = pd.concat([mined, given_sources(train)], ignore_index=True)
    for a, b in HYBRIDS:
        table = pd.concat([table, mining.mix_tables(table[table.source == a], table[table.source == b], f"{a}+{b}")],
                          ignore_index=True)
    return table[["query_id", "query", "positive", "negative", "source"]]


def prepare_data(encoder: Any) -> tuple[pd.DataFrame, dict[str, EvalData]]:
    """Sources and evaluation sets, built once and kept in WORK (a rerun reads them back)."""
    WORK.mkdir(exist_ok=True)
    src_path, id_path = WORK / "sources.jsonl", WORK / "msmarco_id.json"
    dev, held, pool = dev_split()
    if not src_path.exists() or not id_path.exists():
        dense = mining.dense_scorer(encoder, pool, progress=True)
        log("building the in-domain evaluation set")
        ide = in_domain_eval(dev, held, pool, dense)
        id_path.write_text(json.dumps(dataclasses.asdict(ide)), encoding="utf-8")
        log("mining the sources")
        build_sources(pool, [dev.queries[q] for q in held], dense).to_json(
            src_path, orient="records", lines=True, force_ascii=False)
    sources = pd.read_json(src_path, lines=True, dtype={"query_id": str})
    evals = {"msmarco_id": EvalData(**json.loads(id_path.read_text(encoding="utf-8"))),
             "med": load_beir(EXTERNAL / "med"), "cisi": load_beir(EXTERNAL / "cisi")}
    return sources, evals


# ----------------------------------------------------------------------------------------------- runs


def start_model(regime: str) -> tuple[Any, Any]:
    """(encoder for scoring, SentenceTransformer to fine-tune) of a regime."""
    enc = default_encoder()
    layers = REGIMES[regime]["layers"]
    if layers is not None:
        model = enc.model
        bert = model[0].auto_model
        bert.encoder.layer = bert.encoder.layer[:layers]
        bert.config.num_hidden_layers = layers
        model.max_seq_length = 128
        enc.label = f"{enc.label}|layers={layers}|max_seq=128"
    return enc, enc.model


def run_path(regime: str, source: str, seed: int) -> Path:
    return OUT / "runs" / regime / f"{source.replace('+', '__')}__seed{seed}.json"


def run_key(regime: str, source_hash: str, seed: int, train: TrainConfig, eval_fp: str) -> str:
    blob = json.dumps({"v": STUDY_VERSION, "regime": REGIMES[regime], "source": source_hash, "seed": seed,
                       "train": train.to_dict(), "evals": eval_fp}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def evaluate_all(model: Any, evals: dict[str, EvalData]) -> dict[str, dict[str, float]]:
    return {name: evaluate_model(model, data) for name, data in evals.items()}


def train_all(sources: pd.DataFrame, evals: dict[str, EvalData], regimes: list[str], seeds: list[int]) -> None:
    per_source = int(sources.groupby("source").size().min())
    chosen = select_triplets(sources, per_source).triplets
    for regime in regimes:
        _, base = start_model(regime)
        budget = min(per_source, REGIMES[regime].get("per_source", per_source))
        train = TrainConfig(per_source=budget, lr=REGIMES[regime]["lr"], max_seq_length=128)
        used = {e: evals[e] for e in REGIME_EVALS[regime]}
        eval_fp = hashlib.sha1("".join(used[e].fingerprint() for e in used).encode()).hexdigest()
        picked = chosen if budget == per_source else select_triplets(sources, budget).triplets
        jobs = [("(base)", None, 0)] + [(s, part, seed) for seed in seeds
                                        for s, part in picked.groupby("source", sort=True)]
        for i, (source, part, seed) in enumerate(jobs, 1):
            path = run_path(regime, source, seed)
            key = run_key(regime, "untrained" if part is None else source_hash(part), seed, train, eval_fp)
            if path.exists() and json.loads(path.read_text()).get("key") == key:
                continue
            t0 = time.perf_counter()
            log(f"{regime} {i}/{len(jobs)}: {source} seed {seed}")
            if part is None:
                model = copy.deepcopy(base)
                model.max_seq_length = 128
            else:
                model = fine_tune(base, part, train, seed, progress=False)
            metrics = evaluate_all(model, used)
            secs = time.perf_counter() - t0
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"key": key, "regime": regime, "source": source, "seed": seed,
                                       "n_triplets": 0 if part is None else len(part), "metrics": metrics,
                                       "seconds": round(secs, 1), "load_avg": os.getloadavg()[0]}, indent=1))
            os.replace(tmp, path)
            log(f"  {json.dumps({e: round(m['ndcg10'], 4) for e, m in metrics.items()})} in {secs:.0f}s")
            del model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=["train", "analyse"])
    ap.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    args = ap.parse_args(argv)
    if not EXTERNAL.is_dir():
        print(f"validity_study: {EXTERNAL} is missing (the third-party data lives in ../shared)", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.time()
    enc, _ = start_model("adapt")
    sources, evals = prepare_data(enc)
    log(f"sources: {sources.groupby('source').size().to_dict()}")
    log(f"evals: {[evals[e].describe() for e in EVALS]}")
    if args.phase == "train":
        train_all(sources, evals, args.regimes, args.seeds)
        log(f"train phase done in {time.time() - started:.0f}s")
    else:
        from study_analysis import analyse  # benchmarks/study_analysis.py

        analyse(sources, evals, OUT, start_model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
