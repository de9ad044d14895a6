"""Calibrate ECI_sem's settings (those of the registry with grid values: τ, α, β, γ and κ) to a downstream ranking
of sources, with leave-one-source-out CV.

Inputs: a score function ``config -> per-source Series`` (in practice ``score.score_prepared`` on triplets prepared
once, so each setting costs only the fast re-weighting) and the downstream value per source (mean nDCG@10).

1. Score every source under every setting of a small grid (:class:`CalibrationGrid`) → matrix S[setting, source].
2. Objective on a set of sources: Kendall τ-b between S[setting, ·] and downstream; ties broken by Spearman ρ,
   then by closeness to the starting settings (:func:`distance_to`), then by grid order.
3. In-sample: the best setting on all sources. It is what is saved (``calibrated_config.json``), but its agreement
   is optimistic and labelled ``in_sample``.
4. Leave one source out: for each source s, choose the best setting on the others, score all sources with it and
   take s's rank position (1 = best). The out-of-sample agreement is Kendall τ / Spearman ρ between the downstream
   values and these held-out positions (negated, so +1 is perfect). That is the number to quote.

It needs at least :data:`MIN_SOURCES` sources (two to fit on after holding one out).
"""
from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.config import ScoreConfig, Setting, config_class, registry, setting
from ecisem_core.downstream.agreement import kendall_rows, rank_correlations, spearman_rows
from ecisem_core.errors import InputError
from tqdm.auto import tqdm
from ecisem_core.score import score_prepared

MIN_SOURCES: int = 3
"""Leave-one-source-out needs at least this many sources."""

ScoreFunction = Callable[[ScoreConfig], pd.Series]


def grid_settings() -> tuple[Setting, ...]:
    """The settings calibration fits: the registry's settings with grid values, in registry order."""
    return tuple(s for s in registry() if s.grid is not None)


def _default_axes() -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple((s.name, tuple(s.grid)) for s in grid_settings())


@dataclass(frozen=True)
class CalibrationGrid:
    """The settings tried: every combination of the values of ``axes`` (setting name → values; by default each
    registry setting's ``grid``, in registry order). A per-dimension setting's values are factors of d
    (κ = factor · d)."""

    axes: tuple[tuple[str, tuple[float, ...]], ...] = field(default_factory=_default_axes)

    def configs(self, base: ScoreConfig, dim: int | None) -> list[ScoreConfig]:
        """One :class:`ScoreConfig` per combination (other fields from ``base``), the last axis varying fastest.
        Without ``dim``, a per-dimension setting keeps ``base``'s value (κ: its default d/ε² when unset)."""
        names = [name for name, _ in self.axes]
        values = [self._values(setting(name), vals, base, dim) for name, vals in self.axes]
        return [base.replace(**dict(zip(names, combo))) for combo in itertools.product(*values)]

    @staticmethod
    def _values(s: Setting, values: tuple[float, ...], base: ScoreConfig, dim: int | None) -> Sequence[Any]:
        if not s.per_dim:
            return values
        return [f * dim for f in values] if dim else [getattr(base, s.name)]

    @property
    def size(self) -> int:
        return math.prod(len(values) for _, values in self.axes)


def settings_of(config: ScoreConfig, dim: int | None) -> dict[str, float]:
    """The calibrated settings (:func:`grid_settings`: τ, α, β, γ, κ) of a config as plain floats; a
    per-dimension one resolved for dimension ``dim`` when unset (NaN without ``dim``)."""
    out = {}
    for s in grid_settings():
        value = getattr(config, s.name)
        if value is None:
            value = s.per_dim_default * dim if s.per_dim and dim else float("nan")
        out[s.name] = float(value)
    return out


def distance_to(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Tie-break distance between two settings: the sum over :func:`grid_settings` of |ln x_a/x_b| (log-scale
    settings: τ, κ; the term is skipped when either value is unknown) or |x_a−x_b| (the exponents α, β, γ).
    Summed in runs of settings of the same scale — |ln τ| + (|Δα| + |Δβ| + |Δγ|) + |ln κ| — so equal distances
    stay equal to the bit and tie-breaks are as they always were."""
    def term(s: Setting) -> float:
        x, y = a[s.name], b[s.name]
        if not s.log_scale:
            return abs(x - y)
        return abs(math.log(x / y)) if all(math.isfinite(v) and v > 0 for v in (x, y)) else 0.0

    d = 0.0
    for _, run in itertools.groupby(grid_settings(), key=lambda s: s.log_scale):
        d += sum(term(s) for s in run)
    return d


def score_matrix(score_fn: ScoreFunction, configs: Sequence[ScoreConfig], progress: bool = False) -> pd.DataFrame:
    """S[i, source] = score of each source under ``configs[i]`` (rows in grid order)."""
    rows = [pd.Series(score_fn(cfg), dtype=float) for cfg in tqdm(configs, desc="calibrate", unit="setting",
                                                                 leave=False, disable=not progress)]
    return pd.DataFrame(rows).reset_index(drop=True)


def best_setting(scores: pd.DataFrame, downstream: pd.Series, sources: Sequence[str],
                 distances: np.ndarray) -> tuple[int, float, float]:
    """(row index, Kendall τ, Spearman ρ) of the best setting on ``sources``: max τ, then max ρ, then min distance
    to the starting settings, then first in grid order. NaN correlations (constant scores) count as −∞."""
    y = downstream.loc[list(sources)].to_numpy(float)
    sub = scores[list(sources)].to_numpy(float)
    taus, rhos = kendall_rows(sub, y), spearman_rows(sub, y)
    key_tau = np.where(np.isfinite(taus), np.round(taus, 12), -np.inf)
    key_rho = np.where(np.isfinite(rhos), np.round(rhos, 12), -np.inf)
    order = np.lexsort((np.arange(len(sub)), distances, -key_rho, -key_tau))
    best = int(order[0])
    return best, float(taus[best]), float(rhos[best])


def held_out_position(scores_row: pd.Series, source: str) -> float:
    """Rank position of ``source`` among all sources by score (1 = highest; ties share the average position)."""
    return float(scores_row.rank(ascending=False, method="average")[source])


@dataclass
class CalibrationResult:
    """Calibrated settings and how much to trust them.

    ``loo_*`` are the out-of-sample (leave-one-source-out) agreements — the ones to report; ``in_sample_*`` the
    optimistic agreement of the saved setting on the sources it was fitted to; ``default_*`` the agreement of the
    starting settings (not fitted, so also out-of-sample).
    """

    config: ScoreConfig | None
    n_sources: int
    n_seeds: int
    grid_size: int
    loo_kendall: float = float("nan")
    loo_spearman: float = float("nan")
    in_sample_kendall: float = float("nan")
    in_sample_spearman: float = float("nan")
    default_kendall: float = float("nan")
    default_spearman: float = float("nan")
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict[str, float] = field(default_factory=dict)
    ok: bool = True
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-able description (numbers rounded, NaN → None)."""
        def num(x: float) -> float | None:
            return None if x is None or not math.isfinite(x) else round(float(x), 4)

        return {
            "calibrated": self.ok,
            "reason": self.reason or None,
            "rests_on": {"sources": self.n_sources, "seeds": self.n_seeds, "grid_settings": self.grid_size},
            "settings": {k: num(v) for k, v in self.settings.items()},
            "agreement": {
                "leave_one_out": {"kendall_tau": num(self.loo_kendall), "spearman": num(self.loo_spearman),
                                  "note": "out-of-sample: each source's rank predicted by a setting fitted "
                                          "without it — quote this one"},
                "in_sample": {"kendall_tau": num(self.in_sample_kendall), "spearman": num(self.in_sample_spearman),
                              "note": "optimistic: the saved setting scored on the sources it was fitted to"},
                "default_settings": {"kendall_tau": num(self.default_kendall),
                                     "spearman": num(self.default_spearman)},
            },
            "folds": [{k: (num(v) if isinstance(v, float) else v) for k, v in row.items()}
                      for row in self.folds.to_dict("records")],
        }


def calibrate(score_fn: ScoreFunction, downstream: pd.Series, *, base_config: ScoreConfig | None = None,
              grid: CalibrationGrid | None = None, dim: int | None = None, n_seeds: int = 1,
              progress: bool = False) -> CalibrationResult:
    """Fit the grid settings (τ, α, β, γ, κ) to the downstream ranking with leave-one-source-out CV (module
    docstring), starting from ``base_config`` (default settings when ``None``) on ``grid`` (the registry's grid
    when ``None``).

    ``score_fn(config)`` returns a per-source Series; ``downstream`` holds the downstream value per source (higher
    is better). Sources missing from either side are ignored. With fewer than :data:`MIN_SOURCES` sources the
    result has ``ok=False`` and a reason, and nothing should be saved.
    """
    base_config = base_config if base_config is not None else config_class()()
    grid = grid if grid is not None else CalibrationGrid()
    configs = grid.configs(base_config, dim)
    start = settings_of(base_config, dim)
    first = pd.Series(score_fn(base_config), dtype=float)
    sources = [s for s in downstream.index if s in first.index and math.isfinite(downstream[s])]
    result = CalibrationResult(config=None, n_sources=len(sources), n_seeds=n_seeds, grid_size=len(configs))
    if len(sources) < MIN_SOURCES:
        result.ok = False
        result.reason = f"leave-one-source-out needs at least {MIN_SOURCES} sources (got {len(sources)})"
        return result
    y = downstream.loc[sources].astype(float)
    result.default_kendall, result.default_spearman = rank_correlations(first.loc[sources].to_numpy(float), y.to_numpy())
    scores = score_matrix(score_fn, configs, progress)
    missing = [s for s in sources if s not in scores.columns]
    if missing:
        raise InputError(f"the score function gave no score for source(s) {missing}")
    scores = scores[sources]
    dist = np.array([distance_to(settings_of(c, dim), start) for c in configs])

    best, result.in_sample_kendall, result.in_sample_spearman = best_setting(scores, y, sources, dist)
    result.config = configs[best].replace(notes={"calibrated_by": "ecisem validate"})
    result.settings = settings_of(configs[best], dim)

    folds = []
    for s in sources:
        others = [o for o in sources if o != s]
        idx, tau_fit, _ = best_setting(scores, y, others, dist)
        folds.append({"held_out": s, **settings_of(configs[idx], dim), "fit_kendall": tau_fit,
                      "predicted_position": held_out_position(scores.iloc[idx], s),
                      "downstream_position": float(y.rank(ascending=False, method="average")[s])})
    result.folds = pd.DataFrame(folds)
    result.loo_kendall, result.loo_spearman = rank_correlations(-result.folds["predicted_position"].to_numpy(float),
                                                         y.loc[result.folds["held_out"]].to_numpy(float))
    return result


def prepared_score_function(prepared: Any) -> ScoreFunction:
    """ECI_sem per source from a ``score.Prepared``: the core's own ``score_prepared`` with only the point score
    (no contributions, no uncertainty: one log-det per source), so calibration re-weights without re-encoding."""
    def score_fn(config: ScoreConfig) -> pd.Series:
        sources = score_prepared(prepared, config, uncertainty=False, contributions=False).sources
        return pd.Series(sources["eci_sem"].to_numpy(float), index=sources["source"].astype(str))

    return score_fn


def calibrate_from_prepared(prepared: Any, downstream: pd.Series, *, base_config: ScoreConfig | None = None,
                            grid: CalibrationGrid | None = None, dim: int | None = None, n_seeds: int = 1,
                            progress: bool = False) -> CalibrationResult:
    """:func:`calibrate` on ECI_sem of triplets prepared once by ``score.prepare``."""
    return calibrate(prepared_score_function(prepared), downstream, base_config=base_config, grid=grid,
                     dim=dim or prepared.dim, n_seeds=n_seeds, progress=progress)


def save_calibration(result: CalibrationResult, path: str | Path) -> None:
    """Write ``{"config": {...}, "calibration": {...}}``: ``ScoreConfig.load(path)`` reads the settings, the rest
    says how far to trust them. Refuses an uncalibrated result."""
    if not result.ok or result.config is None:
        raise ValueError(f"nothing to save: {result.reason}")
    payload = {"config": result.config.to_dict(), "calibration": result.summary()}
    Path(path).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
