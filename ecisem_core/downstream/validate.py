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

The pieces: :mod:`~ecisem_core.downstream.runs` (budget, run cache, jobs, per-source table),
:mod:`~ecisem_core.downstream.training` (fine-tuning), :mod:`~ecisem_core.downstream.retrieval` (metrics),
:mod:`~ecisem_core.downstream.agreement` (rank correlations), :mod:`~ecisem_core.downstream.calibrate`; the figure
is drawn by :func:`ecisem_core.report.figures.agreement_figure`.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.config import ScoreConfig
from ecisem_core.downstream import calibrate as calibration_mod
from ecisem_core.downstream import guards
from ecisem_core.downstream.agreement import BOOTSTRAP, agreement_table, scores_from_result
from ecisem_core.downstream.retrieval import METRICS
from ecisem_core.downstream.runs import (
    BASE_SOURCE, SEEDS, RunResult, Selection, downstream_series, plan_jobs, run_jobs, select_triplets, summarise_runs,
)
from ecisem_core.downstream.training import DEFAULT_BASE_MODEL, TrainConfig, embedding_dim, load_base
from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import EvalData, LeakReport, remove_eval_leaks
from ecisem_core.score import prepare, score_prepared


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
    prepared = prepare(selected, encoder, config)
    result = score_prepared(prepared, config)
    return scores_from_result(result.sources, result.triplets), prepared


def run_validation(triplets: pd.DataFrame, data: EvalData, *, base_model: str | None = DEFAULT_BASE_MODEL,
                   train: TrainConfig = TrainConfig(), seeds: Sequence[int] = SEEDS,
                   cache_dir: str | Path = "validation-cache", score_config: ScoreConfig = ScoreConfig(),
                   calibrate: bool = True, progress: bool = True, n_boot: int = BOOTSTRAP,
                   scorer: ScoreFn | None = None, loaded: tuple[Any, Any] | None = None,
                   allow_weak_eval: bool = False) -> ValidationResult:
    """The whole downstream check (module docstring, steps 1–6) without writing outputs (see :func:`ecisem_core.report.validation.write_outputs`).

    ``loaded`` = (encoder, model) reuses an already-loaded base; ``scorer`` replaces :func:`default_scorer`.
    The untrained base is evaluated first: an evaluation set that cannot rank sources (:mod:`guards`) is refused
    with an :class:`InputError` before any training, unless ``allow_weak_eval``.
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
    runs = run_jobs(jobs[:1], base, data, train, cache_dir, progress)  # the untrained base first
    problems = guards.headroom_problems(runs[0].metrics.get("ndcg10"), data.n_queries)
    if problems and not allow_weak_eval:
        raise InputError("refusing to train: " + "; ".join(problems)
                         + " (--allow-weak-eval runs anyway, and the outputs say so)")
    runs += run_jobs(jobs[1:], base, data, train, cache_dir, progress)
    train_seconds = time.perf_counter() - started
    table = summarise_runs(runs)
    scores, prepared = (scorer or default_scorer)(selection.triplets, encoder, score_config)
    downstream = downstream_series(table)
    agreement = agreement_table(downstream, scores, n_boot=n_boot)
    calibration = None
    if calibrate:
        calibration = calibration_mod.calibrate_from_prepared(prepared, downstream, base_config=score_config,
                                              n_seeds=len(seeds), dim=embedding_dim(base), progress=progress)
    result = ValidationResult(table=table, agreement=agreement, scores=scores, runs=runs, selection=selection,
                              leaks=leaks, calibration=calibration)
    result.summary = build_summary(result, data=data, base_id=base_id, train=train, seeds=seeds,
                                   score_config=score_config, seconds=time.perf_counter() - started,
                                   train_seconds=train_seconds)
    trained_runs = pd.DataFrame([{"source": r.source, "seed": r.seed, **r.metrics} for r in runs
                                 if r.source != BASE_SOURCE])
    result.summary["seed_kendall_tau"] = guards.seed_kendall(trained_runs) if len(trained_runs) else None
    warnings = problems + [w for w in [guards.noise_warning(table[table["trained"]])] if w]
    result.summary["warnings"] = warnings
    return result


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
