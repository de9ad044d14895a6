"""Downstream check: fine-tune the base model briefly on each source, evaluate retrieval, and measure how well the
training-free scores (ECI_sem, classic ECI, single terms) predicted the downstream ranking.

Pipeline (:func:`run_validation`):

1. leak guard — drop training triplets whose query is an evaluation query (:func:`evaldata.remove_eval_leaks`);
2. budget — the same number of triplets per source, covering the queries shared by all sources first
   (:func:`select_triplets`);
3. for the untrained base and for each (source, seed): fine-tune a copy of the base with
   MultipleNegativesRankingLoss (in-batch negatives + the source's hard negative; :func:`fine_tune`), encode the
   evaluation queries and corpus, score every query against every passage by exact cosine, and compute nDCG@10,
   MRR@10 and Recall@100 (:func:`retrieval_metrics`). Each run is cached as one JSON file keyed by
   (source content hash, base model, budget, evaluation set, seed) (:class:`RunKey`): an interrupted run resumes,
   and adding a source only trains that source;
4. per-source mean ± sd over seeds (:func:`summarise_runs`) → ``validation.csv``;
5. agreement — Kendall τ and Spearman ρ between the downstream ranking (mean nDCG@10) and each score, with a
   bootstrap CI over sources (:func:`agreement_table`) → ``agreement.csv``, ``agreement.html``;
6. optional calibration of τ, α, β, γ, κ (:mod:`ecisem_core.downstream.calibrate`) → ``calibrated_config.json``;
   ``summary.json`` records the settings, sizes, leaks removed and headline numbers.

Training uses a small explicit PyTorch loop around sentence-transformers' own loss (the Trainer needs the
``datasets`` and ``accelerate`` packages, which this project does not ship): AdamW, linear warm-up then linear
decay, gradient clipping, no duplicate query or positive inside a batch (they would be false in-batch negatives).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.config import ScoreConfig
from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import EvalData, LeakReport, normalise_query, remove_eval_leaks

# ---------------------------------------------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------------------------------------------

PER_SOURCE: int = 500
"""Triplets per source used for fine-tuning (all sources get the same number: the smallest available if less)."""
EPOCHS: int = 1
"""Passes over each source's triplets."""
LEARNING_RATE: float = 2e-5
"""Peak AdamW learning rate."""
BATCH_SIZE: int = 32
"""Triplets per batch; each query sees the other 2·(B−1) passages of its batch as in-batch negatives."""
WARMUP_RATIO: float = 0.1
"""Share of the training steps over which the learning rate rises linearly from 0 (then decays linearly to 0)."""
WEIGHT_DECAY: float = 0.01
"""AdamW weight decay (not applied to biases and LayerNorm weights)."""
MAX_GRAD_NORM: float = 1.0
"""Gradient-norm clipping."""
MNRL_SCALE: float = 20.0
"""Scale (inverse temperature) of MultipleNegativesRankingLoss: logits = 20 · cosine."""
MAX_SEQ_LENGTH: int | None = 128
"""Tokens per text in training and evaluation (None: the model's own, 256 for all-MiniLM-L6-v2, which was itself
trained at 128). Measured on 2 CPU cores, batch 32 of MS MARCO triplets: 128 tokens → 5.7 s/step and 4.2 GB peak
memory; 256 → 13 s/step and 7.4 GB (activation memory grows with batch × length)."""
SEEDS: tuple[int, ...] = (0,)
"""Training seeds (batch order, dropout); results are mean ± sd over them."""
SELECTION_SEED: int = 0
"""Seed of the per-source selection of triplets (fixed across training seeds)."""
ENCODE_BATCH_SIZE: int = 64
"""Texts per forward pass when encoding the evaluation queries and corpus."""
NDCG_K: int = 10
MRR_K: int = 10
RECALL_K: int = 100
METRICS: tuple[str, ...] = ("ndcg10", "mrr10", "recall100")
"""Metric keys: nDCG@10, MRR@10, Recall@100."""
PRIMARY_METRIC: str = "ndcg10"
"""The downstream ranking of sources is by the mean of this metric over seeds."""
BOOTSTRAP: int = 1000
"""Bootstrap resamples over sources for the agreement CIs."""
CI_LEVEL: float = 0.95
BASE_SOURCE: str = "(base)"
"""Name of the untrained-base row in ``validation.csv``."""
DEFAULT_BASE_MODEL: str = "default"
"""The offline default all-MiniLM-L6-v2 (see :func:`ecisem_core.embed.encoders.get_encoder`)."""
SCORE_NAMES: tuple[str, ...] = ("eci_sem", "eci_v1", "c", "h", "rho", "w")
"""Scores compared with the downstream ranking: ECI_sem, classic ECI and per-source means of each term."""
CACHE_VERSION: int = 1
"""Bumped when the training or evaluation procedure changes, so old cached runs are not reused."""


@dataclass(frozen=True)
class TrainConfig:
    """The fine-tuning budget. Everything here is part of the cache key."""

    per_source: int = PER_SOURCE
    epochs: int = EPOCHS
    lr: float = LEARNING_RATE
    batch_size: int = BATCH_SIZE
    warmup_ratio: float = WARMUP_RATIO
    weight_decay: float = WEIGHT_DECAY
    max_grad_norm: float = MAX_GRAD_NORM
    scale: float = MNRL_SCALE
    max_seq_length: int | None = MAX_SEQ_LENGTH

    def __post_init__(self) -> None:
        problems = []
        if self.per_source < 1:
            problems.append(f"per_source must be >= 1 (got {self.per_source})")
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1 (got {self.epochs})")
        if not (math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"lr must be > 0 (got {self.lr})")
        if self.batch_size < 2:
            problems.append(f"batch_size must be >= 2 (got {self.batch_size})")
        if not 0 <= self.warmup_ratio < 1:
            problems.append(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if self.max_seq_length is not None and self.max_seq_length < 8:
            problems.append(f"max_seq_length must be >= 8 (got {self.max_seq_length})")
        if problems:
            raise InputError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# Retrieval metrics (exact cosine over the evaluation corpus)
# ---------------------------------------------------------------------------------------------------------------


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores of each row, best first (ties: lower index first), shape (Q, min(k, D))."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def dcg(gains: np.ndarray) -> np.ndarray:
    """Discounted cumulative gain of ranked gains (Q, k): DCG = Σ_{i=1..k} g_i / log2(i + 1) (linear gain)."""
    discounts = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    return gains @ discounts


def ndcg_at_k(ranked_gains: np.ndarray, all_gains: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k per query = DCG@k of the ranking / DCG@k of the ideal ranking (gains sorted descending).

    ``ranked_gains`` (Q, ≥k) are the grades of the retrieved passages in rank order; ``all_gains`` (Q, D) the grades
    of every corpus passage. Queries with no relevant passage get 0.
    """
    ideal = -np.sort(-all_gains, axis=1)[:, :k]
    idcg = dcg(ideal)
    got = dcg(ranked_gains[:, :k])
    return np.divide(got, idcg, out=np.zeros_like(got, dtype=float), where=idcg > 0)


def mrr_at_k(ranked_relevant: np.ndarray, k: int) -> np.ndarray:
    """Reciprocal rank per query: 1 / (rank of the first relevant passage) if it is within the top k, else 0."""
    hits = ranked_relevant[:, :k]
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def recall_at_k(ranked_relevant: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Recall@k per query = |relevant ∩ top k| / |relevant| (0 when a query has no relevant passage)."""
    got = ranked_relevant[:, :k].sum(axis=1).astype(float)
    return np.divide(got, n_relevant, out=np.zeros_like(got), where=n_relevant > 0)


def gain_matrix(data: EvalData) -> tuple[list[str], list[str], np.ndarray]:
    """(query ids, passage ids, grades (Q, D) float64) of an evaluation set, ids in sorted order."""
    qids, dids = sorted(data.queries), sorted(data.corpus)
    col = {d: j for j, d in enumerate(dids)}
    gains = np.zeros((len(qids), len(dids)))
    for i, q in enumerate(qids):
        for d, g in data.qrels[q].items():
            gains[i, col[d]] = g
    return qids, dids, gains


def retrieval_metrics(scores: np.ndarray, gains: np.ndarray) -> dict[str, float]:
    """Mean nDCG@10, MRR@10 and Recall@100 over queries.

    ``scores`` (Q, D): similarity of every query to every passage (here: exact cosine); ``gains`` (Q, D): relevance
    grades (0 = not relevant). Ranking: descending score, ties broken by passage order.
    """
    ranked = top_k(scores, max(NDCG_K, MRR_K, RECALL_K))
    ranked_gains = np.take_along_axis(gains, ranked, axis=1)
    relevant = ranked_gains > 0
    n_relevant = (gains > 0).sum(axis=1)
    return {
        "ndcg10": float(ndcg_at_k(ranked_gains, gains, NDCG_K).mean()),
        "mrr10": float(mrr_at_k(relevant, MRR_K).mean()),
        "recall100": float(recall_at_k(relevant, n_relevant, RECALL_K).mean()),
    }


# ---------------------------------------------------------------------------------------------------------------
# Budget: same number of triplets per source, shared queries first
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What :func:`select_triplets` chose: the triplets, the per-source count and how many queries are shared."""

    triplets: pd.DataFrame
    per_source: int
    shared_queries: int
    requested: int


def select_triplets(triplets: pd.DataFrame, per_source: int, seed: int = SELECTION_SEED) -> Selection:
    """The same number n = min(per_source, smallest source) of triplets from each source.

    Queries are identified by :func:`normalise_query`. Each source's triplets are ordered by the key
    (r, not shared, u): r = the triplet's seeded random rank among its query's triplets (0 for the first), "shared"
    = the query is in every source, u = the query's seeded random position. The first n are kept, so every source
    first covers the queries shared by all sources once, then its other queries, then second triplets of a query.
    With the same seed, sources over the same queries get the same queries.
    """
    if triplets.empty:
        raise InputError("no training triplets left")
    df = triplets.copy()
    df["_qkey"] = df["query"].astype(str).map(normalise_query)
    sources = sorted(df["source"].astype(str).unique())
    per_q = [set(df.loc[df["source"] == s, "_qkey"]) for s in sources]
    shared = set.intersection(*per_q) if per_q else set()
    all_keys = sorted(set().union(*per_q))
    rng = np.random.default_rng(seed)
    position = dict(zip(all_keys, rng.permutation(len(all_keys)).tolist()))
    df["_u"] = df["_qkey"].map(position)
    df["_not_shared"] = ~df["_qkey"].isin(shared)
    df["_tie"] = rng.random(len(df))
    df["_r"] = df.sort_values(["_tie"]).groupby(["source", "_qkey"]).cumcount().reindex(df.index)
    n = min(per_source, int(df.groupby("source").size().min()))
    chosen = (df.sort_values(["source", "_r", "_not_shared", "_u", "_tie"], kind="stable")
              .groupby("source", sort=True).head(n))
    chosen = chosen.drop(columns=["_qkey", "_u", "_not_shared", "_tie", "_r"])
    return Selection(triplets=chosen, per_source=n, shared_queries=len(shared), requested=per_source)


def source_hash(triplets: pd.DataFrame) -> str:
    """sha1 over the (query, positive, negative) texts of a source's triplets, in order (training order matters)."""
    h = hashlib.sha1()
    for q, p, n in triplets[["query", "positive", "negative"]].itertuples(index=False):
        h.update(f"{q}\x1f{p}\x1f{n}\x1e".encode("utf-8"))
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Cache of runs
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunKey:
    """Identity of one fine-tune + evaluation run. ``source_hash`` is ``"untrained"`` for the base model."""

    source_hash: str
    base_model: str
    budget: Mapping[str, Any]
    eval_fingerprint: str
    seed: int

    def digest(self) -> str:
        blob = json.dumps({"v": CACHE_VERSION, **dataclasses.asdict(self), "budget": dict(self.budget)},
                          sort_keys=True, default=str)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunResult:
    """Metrics of one run. ``cached`` says whether it was read from the cache instead of computed now."""

    source: str
    seed: int
    metrics: dict[str, float]
    n_triplets: int
    n_queries: int
    seconds: float
    key: str
    cached: bool = False


def cache_path(cache_dir: str | Path, key: RunKey) -> Path:
    return Path(cache_dir) / "runs" / f"{key.digest()}.json"


def read_cached(cache_dir: str | Path, key: RunKey, source: str) -> RunResult | None:
    """The cached result of a run, or None (missing, unreadable or for a different key: recomputed)."""
    path = cache_path(cache_dir, key)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key.digest():
            return None
        metrics = {m: float(data["metrics"][m]) for m in METRICS}
        return RunResult(source=source, seed=int(data["seed"]), metrics=metrics, n_triplets=int(data["n_triplets"]),
                         n_queries=int(data["n_queries"]), seconds=float(data["seconds"]), key=key.digest(),
                         cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(cache_dir: str | Path, key: RunKey, result: RunResult) -> Path:
    """Write a run atomically (temporary file + rename), so an interruption never leaves a half-written entry."""
    path = cache_path(cache_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**dataclasses.asdict(result), "key": key.digest(), "run_key": dataclasses.asdict(key)}
    payload.pop("cached", None)
    payload["run_key"]["budget"] = dict(key.budget)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# Model: load, fine-tune, evaluate
# ---------------------------------------------------------------------------------------------------------------


def load_base(spec: str | None = DEFAULT_BASE_MODEL) -> tuple[Any, Any]:
    """(encoder, SentenceTransformer) for a base-model spec: ``"default"`` (offline all-MiniLM-L6-v2), a
    sentence-transformers model name or a local path. The encoder (the untrained base) is also the target encoder
    used to score the sources."""
    from ecisem_core.embed.encoders import get_encoder

    encoder = get_encoder(None if spec in (None, "", DEFAULT_BASE_MODEL) else spec)
    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "encode"):
        raise InputError(f"base model {spec!r} is not a sentence-transformers model; it cannot be fine-tuned")
    return encoder, model


def make_batches(keys: Sequence[frozenset[str]], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffle the items, then fill batches greedily so that no two items of a batch share a key.

    Keys are (normalised query, positive text): a repeated query or positive inside a batch would be a false
    in-batch negative. Items that do not fit are deferred to later batches; every item is used exactly once.
    """
    remaining = rng.permutation(len(keys)).tolist()
    batches: list[list[int]] = []
    while remaining:
        batch: list[int] = []
        seen: set[str] = set()
        left: list[int] = []
        for i in remaining:
            if len(batch) < batch_size and not (keys[i] & seen):
                batch.append(i)
                seen |= keys[i]
            else:
                left.append(i)
        batches.append(batch)
        remaining = left
    return batches


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: step/warmup during warm-up, then (total − step)/(total − warmup), floored at 0."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def fine_tune(base: Any, triplets: pd.DataFrame, config: TrainConfig, seed: int,
              progress: bool = False, desc: str = "train") -> Any:
    """A fine-tuned copy of ``base`` (the base is untouched).

    Loss: MultipleNegativesRankingLoss on (query, positive, negative): for query i of a batch of B,
    ℓ_i = −log softmax_j(scale · cos(q_i, d_j))[p_i] over d_j ∈ {p_1..p_B, n_1..n_B}.
    Optimiser AdamW(lr, weight decay), linear warm-up over ``warmup_ratio`` of the steps then linear decay,
    gradient norm clipped to ``max_grad_norm``. Seeded: ``random``, numpy and torch.
    """
    import torch
    from tqdm.auto import tqdm

    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(base)
    if config.max_seq_length is not None:
        model.max_seq_length = config.max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model, scale=config.scale)
    queries = triplets["query"].astype(str).tolist()
    positives = triplets["positive"].astype(str).tolist()
    negatives = triplets["negative"].astype(str).tolist()
    keys = [frozenset({"q:" + normalise_query(q), "p:" + p}) for q, p in zip(queries, positives)]
    epochs = [make_batches(keys, config.batch_size, rng) for _ in range(config.epochs)]
    total = sum(len(b) for b in epochs)
    warmup = int(round(config.warmup_ratio * total))
    no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [{"params": [p for n, p in named if not any(k in n for k in no_decay)], "weight_decay": config.weight_decay},
         {"params": [p for n, p in named if any(k in n for k in no_decay)], "weight_decay": 0.0}],
        lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: linear_schedule(s, total, warmup))
    model.train()
    with tqdm(total=total, desc=desc, leave=False, disable=not progress, unit="step") as bar:
        for batches in epochs:
            for batch in batches:
                features = [model.preprocess([col[i] for i in batch]) for col in (queries, positives, negatives)]
                loss = loss_fn(features, torch.empty(0))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


def encode(model: Any, texts: Sequence[str], progress: bool = False) -> np.ndarray:
    """L2-normalised float32 embeddings (rows) of ``texts``."""
    import torch

    with torch.inference_mode():
        vectors = model.encode(list(texts), batch_size=ENCODE_BATCH_SIZE, show_progress_bar=progress,
                               convert_to_numpy=True, normalize_embeddings=True)
    return np.asarray(vectors, dtype=np.float32)


def evaluate_model(model: Any, data: EvalData, progress: bool = False) -> dict[str, float]:
    """Encode the evaluation queries and corpus with ``model`` and return :func:`retrieval_metrics` on exact cosine
    scores (dot products of L2-normalised embeddings) of every query against every passage."""
    qids, dids, gains = gain_matrix(data)
    q = encode(model, [data.queries[i] for i in qids], progress)
    d = encode(model, [data.corpus[i] for i in dids], progress)
    return retrieval_metrics(q @ d.T, gains)


# ---------------------------------------------------------------------------------------------------------------
# Runs and the per-source table
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One run to do: a source (or the base, ``triplets is None``) and a seed."""

    source: str
    seed: int
    key: RunKey
    triplets: pd.DataFrame | None


def plan_jobs(selected: pd.DataFrame, base_id: str, train: TrainConfig, data: EvalData,
              seeds: Sequence[int]) -> list[Job]:
    """The base run (seed-independent: it is not trained) and one run per (source, seed)."""
    fp = data.fingerprint()
    base_key = RunKey("untrained", base_id, {"max_seq_length": train.max_seq_length}, fp, 0)
    jobs = [Job(BASE_SOURCE, 0, base_key, None)]
    budget = train.to_dict()
    for source, part in selected.groupby("source", sort=True):
        sh = source_hash(part)
        for seed in seeds:
            jobs.append(Job(str(source), int(seed), RunKey(sh, base_id, budget, fp, int(seed)), part))
    return jobs


def run_jobs(jobs: Sequence[Job], base: Any, data: EvalData, train: TrainConfig, cache_dir: str | Path,
             progress: bool = True) -> list[RunResult]:
    """Run (or read from the cache) every job, writing each result to the cache as soon as it is done.

    On Ctrl-C the completed runs are already cached; a rerun with the same inputs resumes where it stopped.
    """
    from tqdm.auto import tqdm

    results: list[RunResult] = []
    with tqdm(total=len(jobs), desc="validate", unit="run", disable=not progress) as bar:
        for job in jobs:
            bar.set_postfix_str(f"{job.source} seed {job.seed}")
            hit = read_cached(cache_dir, job.key, job.source)
            if hit is None:
                start = time.perf_counter()
                if job.triplets is None:  # the untrained base, truncated like the fine-tuned copies
                    model, n_trip, n_q = _truncated(base, train.max_seq_length), 0, 0
                else:
                    model = fine_tune(base, job.triplets, train, job.seed, progress, desc=f"{job.source}/{job.seed}")
                    n_trip = len(job.triplets)
                    n_q = job.triplets["query"].astype(str).map(normalise_query).nunique()
                metrics = evaluate_model(model, data)
                hit = RunResult(job.source, job.seed, metrics, n_trip, int(n_q), time.perf_counter() - start,
                                job.key.digest(), cached=False)
                write_cached(cache_dir, job.key, hit)
                del model
            results.append(hit)
            bar.update(1)
    return results


def _truncated(model: Any, max_seq_length: int | None) -> Any:
    """``model`` itself, or a copy limited to ``max_seq_length`` tokens (the base is never modified)."""
    if max_seq_length is None:
        return model
    model = copy.deepcopy(model)
    model.max_seq_length = max_seq_length
    return model


def summarise_runs(runs: Sequence[RunResult]) -> pd.DataFrame:
    """One row per source (the base first): n_triplets, n_queries, n_seeds, ``<metric>_mean``, ``<metric>_sd``
    (sample sd over seeds, NaN with one seed), ``delta_ndcg10`` = mean nDCG@10 − base nDCG@10, and
    ``downstream_rank`` (1 = best mean nDCG@10 among sources; NaN for the base)."""
    rows = []
    df = pd.DataFrame([{"source": r.source, "seed": r.seed, "n_triplets": r.n_triplets, "n_queries": r.n_queries,
                        **r.metrics} for r in runs])
    for source, part in df.groupby("source", sort=False):
        row: dict[str, Any] = {"source": source, "trained": source != BASE_SOURCE,
                               "n_triplets": int(part["n_triplets"].iloc[0]),
                               "n_queries": int(part["n_queries"].iloc[0]),
                               "n_seeds": len(part)}
        for m in METRICS:
            row[f"{m}_mean"] = float(part[m].mean())
            row[f"{m}_sd"] = float(part[m].std(ddof=1)) if len(part) > 1 else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    base = table.loc[table["source"] == BASE_SOURCE, f"{PRIMARY_METRIC}_mean"]
    base_value = float(base.iloc[0]) if len(base) else float("nan")
    table[f"delta_{PRIMARY_METRIC}"] = table[f"{PRIMARY_METRIC}_mean"] - base_value
    trained = table["trained"]
    table["downstream_rank"] = np.nan
    table.loc[trained, "downstream_rank"] = table.loc[trained, f"{PRIMARY_METRIC}_mean"].rank(
        ascending=False, method="min")
    table["_order"] = table["downstream_rank"].fillna(0)
    return table.sort_values(["_order", "source"], kind="stable").drop(columns="_order").reset_index(drop=True)


def downstream_series(table: pd.DataFrame, metric: str = PRIMARY_METRIC) -> pd.Series:
    """Mean downstream metric per trained source (index: source)."""
    trained = table[table["trained"]]
    return pd.Series(trained[f"{metric}_mean"].to_numpy(), index=trained["source"].astype(str), name=metric)


# ---------------------------------------------------------------------------------------------------------------
# Agreement between the downstream ranking and the scores
# ---------------------------------------------------------------------------------------------------------------


def rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(Kendall τ-b, Spearman ρ) of two equal-length vectors; NaN when either is constant or n < 2."""
    from scipy.stats import kendalltau, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)


def agreement_table(downstream: pd.Series, scores: Mapping[str, pd.Series], n_boot: int = BOOTSTRAP,
                    seed: int = 0, level: float = CI_LEVEL) -> pd.DataFrame:
    """Kendall τ and Spearman ρ between the downstream values and each score over the sources both cover.

    Higher score should mean better downstream, so +1 is perfect agreement. The CI is a percentile bootstrap over
    sources: resample the n sources with replacement ``n_boot`` times, recompute both coefficients (τ-b handles the
    ties that repeats create), and take the (1 ± level)/2 quantiles of the finite values. With few sources the
    interval is wide, which is the honest answer. Also reports the two-sided p-values of scipy's tests.
    """
    from scipy.stats import kendalltau, spearmanr

    rows = []
    rng = np.random.default_rng(seed)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    for name, series in scores.items():
        common = [s for s in downstream.index if s in series.index and np.isfinite(series.get(s, np.nan))]
        x = downstream.loc[common].to_numpy(float)
        y = series.loc[common].to_numpy(float)
        tau, rho = rank_correlations(x, y)
        ok = not math.isnan(tau)
        row = {"score": name, "n_sources": len(common), "kendall_tau": tau,
               "kendall_p": float(kendalltau(x, y).pvalue) if ok else float("nan"),
               "spearman": rho, "spearman_p": float(spearmanr(x, y).pvalue) if ok else float("nan")}
        boots = np.full((n_boot, 2), np.nan)
        if len(common) >= 2 and n_boot > 0:
            idx = rng.integers(0, len(common), size=(n_boot, len(common)))
            for b in range(n_boot):
                boots[b] = rank_correlations(x[idx[b]], y[idx[b]])
        for j, col in enumerate(("kendall", "spearman")):
            finite = boots[:, j][np.isfinite(boots[:, j])]
            row[f"{col}_ci_low"] = float(np.percentile(finite, lo_q)) if finite.size else float("nan")
            row[f"{col}_ci_high"] = float(np.percentile(finite, hi_q)) if finite.size else float("nan")
        rows.append(row)
    cols = ["score", "n_sources", "kendall_tau", "kendall_ci_low", "kendall_ci_high", "kendall_p",
            "spearman", "spearman_ci_low", "spearman_ci_high", "spearman_p"]
    return pd.DataFrame(rows, columns=cols)


def scores_from_result(sources: pd.DataFrame, triplets: pd.DataFrame) -> dict[str, pd.Series]:
    """Per-source score Series from a :class:`~ecisem_core.score.ScoreResult`'s tables: ``eci_sem`` and
    ``eci_v1`` from ``sources``; c, h, ρ, w as per-source means over ``triplets``."""
    src = sources.set_index(sources["source"].astype(str))
    out = {name: src[name].astype(float) for name in ("eci_sem", "eci_v1") if name in src.columns}
    means = triplets.groupby(triplets["source"].astype(str))[[c for c in ("c", "h", "rho", "w")
                                                                if c in triplets.columns]].mean()
    out.update({c: means[c].astype(float) for c in means.columns})
    return {k: out[k].rename(k) for k in SCORE_NAMES if k in out}


def agreement_figure(table: pd.DataFrame, agreement: pd.DataFrame, scores: Mapping[str, pd.Series]) -> Any:
    """Plotly figure: left, Kendall τ and Spearman ρ per score with bootstrap CIs; right, ECI_sem against mean
    nDCG@10 per source (error bars: sd over seeds; dashed line: the untrained base)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                        subplot_titles=("Agreement with the downstream ranking (95% bootstrap CI over sources)",
                                        "ECI_sem vs downstream nDCG@10"))
    for col, label, colour in (("kendall", "Kendall τ", "#1f77b4"), ("spearman", "Spearman ρ", "#ff7f0e")):
        value = agreement["kendall_tau" if col == "kendall" else "spearman"]
        fig.add_trace(go.Bar(x=agreement["score"], y=value, name=label, marker_color=colour,
                             error_y=dict(type="data", symmetric=False,
                                          array=(agreement[f"{col}_ci_high"] - value).clip(lower=0),
                                          arrayminus=(value - agreement[f"{col}_ci_low"]).clip(lower=0))),
                      row=1, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], title_text="rank correlation", row=1, col=1)
    trained = table[table["trained"]].set_index("source")
    eci = scores.get("eci_sem")
    if eci is not None:
        common = [s for s in trained.index if s in eci.index]
        fig.add_trace(go.Scatter(
            x=eci.loc[common], y=trained.loc[common, "ndcg10_mean"], mode="markers+text", text=common,
            textposition="top center", name="sources", marker=dict(size=11, color="#2ca02c"),
            error_y=dict(type="data", array=trained.loc[common, "ndcg10_sd"].fillna(0))), row=1, col=2)
        fig.update_xaxes(title_text="ECI_sem (frozen base encoder)", row=1, col=2)
    base = table.loc[~table["trained"], "ndcg10_mean"]
    if len(base):
        fig.add_hline(y=float(base.iloc[0]), line_dash="dash", line_color="grey", row=1, col=2,
                      annotation_text="untrained base", annotation_position="bottom right")
    fig.update_yaxes(title_text="nDCG@10 (mean over seeds)", row=1, col=2)
    fig.update_layout(template="plotly_white", height=480, width=1150, barmode="group",
                      legend=dict(orientation="h", y=-0.2))
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ValidationResult:
    """Everything ``ecisem validate`` writes (tables as DataFrames, the rest in ``summary``)."""

    table: pd.DataFrame
    agreement: pd.DataFrame
    scores: dict[str, pd.Series]
    runs: list[RunResult]
    selection: Selection
    leaks: LeakReport
    summary: dict[str, Any] = field(default_factory=dict)
    calibration: Any = None


ScoreFn = Callable[[pd.DataFrame, Any, ScoreConfig], tuple[dict[str, pd.Series], Any]]


def default_scorer(selected: pd.DataFrame, encoder: Any, config: ScoreConfig) -> tuple[dict[str, pd.Series], Any]:
    """Score the trained-on triplets with the frozen base as target encoder (``score.prepare`` +
    ``score.score_prepared``); returns (per-source score Series, the prepared object for calibration)."""
    from ecisem_core import score

    prepared = score.prepare(selected, encoder, config)
    result = score.score_prepared(prepared, config)
    return scores_from_result(result.sources, result.triplets), prepared


def run_validation(triplets: pd.DataFrame, data: EvalData, *, base_model: str | None = DEFAULT_BASE_MODEL,
                   train: TrainConfig = TrainConfig(), seeds: Sequence[int] = SEEDS,
                   cache_dir: str | Path = "validation-cache", score_config: ScoreConfig = ScoreConfig(),
                   calibrate: bool = True, progress: bool = True, n_boot: int = BOOTSTRAP,
                   scorer: ScoreFn | None = None, loaded: tuple[Any, Any] | None = None) -> ValidationResult:
    """The whole downstream check (module docstring, steps 1–6) without writing outputs (see :func:`write_outputs`).

    ``loaded`` = (encoder, model) reuses an already-loaded base; ``scorer`` replaces :func:`default_scorer`.
    """
    started = time.perf_counter()
    seeds = tuple(dict.fromkeys(int(s) for s in seeds))
    if not seeds:
        raise InputError("at least one seed is needed")
    clean, leaks = remove_eval_leaks(triplets, data)
    if clean["source"].nunique() < 1:
        raise InputError("no training triplets left after removing evaluation queries")
    selection = select_triplets(clean, train.per_source)
    encoder, base = loaded if loaded is not None else load_base(base_model)
    base_id = str(getattr(encoder, "model_id", base_model))
    jobs = plan_jobs(selection.triplets, base_id, train, data, seeds)
    runs = run_jobs(jobs, base, data, train, cache_dir, progress)
    train_seconds = time.perf_counter() - started
    table = summarise_runs(runs)
    scores, prepared = (scorer or default_scorer)(selection.triplets, encoder, score_config)
    downstream = downstream_series(table)
    agreement = agreement_table(downstream, scores, n_boot=n_boot)
    calibration = None
    if calibrate:
        from ecisem_core.downstream.calibrate import calibrate_from_prepared

        calibration = calibrate_from_prepared(prepared, downstream, base_config=score_config,
                                              n_seeds=len(seeds), dim=_embedding_dim(base), progress=progress)
    result = ValidationResult(table=table, agreement=agreement, scores=scores, runs=runs, selection=selection,
                              leaks=leaks, calibration=calibration)
    result.summary = build_summary(result, data=data, base_id=base_id, train=train, seeds=seeds,
                                   score_config=score_config, seconds=time.perf_counter() - started,
                                   train_seconds=train_seconds)
    return result


def _embedding_dim(model: Any) -> int | None:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        fn = getattr(model, name, None)
        if fn is not None:
            try:
                dim = fn()
            except Exception:  # noqa: BLE001 - fall through to the next accessor
                continue
            if dim:
                return int(dim)
    return None


def build_summary(result: ValidationResult, *, data: EvalData, base_id: str, train: TrainConfig,
                  seeds: Sequence[int], score_config: ScoreConfig, seconds: float, train_seconds: float
                  ) -> dict[str, Any]:
    """The JSON-able summary of a run (``summary.json``)."""
    table, agr = result.table, result.agreement
    trained = table[table["trained"]]
    best = trained.sort_values("ndcg10_mean", ascending=False)["source"].iloc[0] if len(trained) else None
    eci = result.scores.get("eci_sem")
    best_eci = str(eci.idxmax()) if eci is not None and len(eci) else None
    eci_row = agr[agr["score"] == "eci_sem"]
    summary: dict[str, Any] = {
        "sources": trained["source"].tolist(),
        "n_sources": int(len(trained)),
        "seeds": list(seeds),
        "n_seeds": len(seeds),
        "base_model": base_id,
        "budget": {**train.to_dict(), "per_source_used": result.selection.per_source},
        "shared_queries": result.selection.shared_queries,
        "eval": data.describe(),
        "leak_guard": dataclasses.asdict(result.leaks),
        "base_metrics": {m: float(table.loc[~table["trained"], f"{m}_mean"].iloc[0]) for m in METRICS}
        if (~table["trained"]).any() else {},
        "best_downstream": best,
        "best_by_eci_sem": best_eci,
        "agreement_eci_sem": _clean(eci_row.iloc[0].to_dict()) if len(eci_row) else None,
        "score_config": score_config.to_dict(),
        "runs": {"total": len(result.runs), "from_cache": sum(r.cached for r in result.runs),
                 "trained_now": sum((not r.cached) and r.source != BASE_SOURCE for r in result.runs)},
        "seconds": {"total": round(seconds, 2), "train_and_eval": round(train_seconds, 2)},
    }
    if result.calibration is not None:
        summary["calibration"] = result.calibration.summary()
    return _clean(summary)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


OUTPUT_FILES: tuple[str, ...] = ("validation.csv", "agreement.csv", "scores.csv", "agreement.html", "summary.json")
"""Files :func:`write_outputs` always writes; ``calibrated_config.json`` too when calibration ran."""
CALIBRATION_FILE: str = "calibrated_config.json"


def write_outputs(result: ValidationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write validation.csv, agreement.csv, scores.csv (per-source scores), agreement.html (plotly, self-contained),
    summary.json and, after calibration, calibrated_config.json (loadable by ``ScoreConfig.load``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_FILES}
    result.table.to_csv(paths["validation.csv"], index=False)
    result.agreement.to_csv(paths["agreement.csv"], index=False)
    pd.DataFrame(result.scores).rename_axis("source").to_csv(paths["scores.csv"])
    fig = agreement_figure(result.table, result.agreement, result.scores)
    fig.write_html(paths["agreement.html"], include_plotlyjs=True, full_html=True)
    if result.calibration is not None and result.calibration.ok:
        from ecisem_core.downstream.calibrate import save_calibration

        paths[CALIBRATION_FILE] = out / CALIBRATION_FILE
        save_calibration(result.calibration, paths[CALIBRATION_FILE])
    paths["summary.json"].write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return paths


def iter_cached_runs(cache_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every cached run's JSON (for inspection and the dashboard)."""
    for path in sorted((Path(cache_dir) / "runs").glob("*.json")):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
