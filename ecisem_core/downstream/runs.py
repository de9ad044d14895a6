"""Runs of ``ecisem validate``: the per-source budget, the cache of finished runs, running the jobs, and the
per-source table of downstream metrics.

Each run is cached as one JSON file keyed by (source content hash, base model, budget, evaluation set, seed)
(:class:`RunKey`): an interrupted validation resumes, and adding a source only trains that source.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.downstream.retrieval import METRICS, evaluate_model
from ecisem_core.downstream.training import TrainConfig, truncated, fine_tune
from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import EvalData, normalise_query
from tqdm.auto import tqdm

SEEDS: tuple[int, ...] = (0,)
"""Training seeds (batch order, dropout); results are mean ± sd over them."""
SELECTION_SEED: int = 0
"""Seed of the per-source selection of triplets (fixed across training seeds)."""
PRIMARY_METRIC: str = "ndcg10"
"""The downstream ranking of sources is by the mean of this metric over seeds."""
BASE_SOURCE: str = "(base)"
"""Name of the untrained-base row in ``validation.csv``."""
CACHE_VERSION: int = 1
"""Bumped when the training or evaluation procedure changes, so old cached runs are not reused."""


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
    results: list[RunResult] = []
    with tqdm(total=len(jobs), desc="validate", unit="run", disable=not progress) as bar:
        for job in jobs:
            bar.set_postfix_str(f"{job.source} seed {job.seed}")
            hit = read_cached(cache_dir, job.key, job.source)
            if hit is None:
                start = time.perf_counter()
                if job.triplets is None:  # the untrained base, truncated like the fine-tuned copies
                    model, n_trip, n_q = truncated(base, train.max_seq_length), 0, 0
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


def iter_cached_runs(cache_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every cached run's JSON (for inspection and the dashboard)."""
    for path in sorted((Path(cache_dir) / "runs").glob("*.json")):
        try:
            yield json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
