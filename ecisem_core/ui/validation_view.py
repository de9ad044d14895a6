"""Logic of the Validate page (no Streamlit): find and read ``ecisem validate`` result folders, turn them into
display tables and sidebar settings, and start / watch / stop a small validation run in the background.

    results = read_results(folder)            # ResultsError with a readable message when a file is missing or bad
    downstream_table(results.table)           # source, nDCG@10 / MRR@10 / Recall@100 as "mean ± sd", …
    agreement_table(results.agreement)        # score label, Kendall τ [CI], Spearman ρ [CI], n sources
    values, notes = sidebar_values(results.calibration)   # {session key: value} for "Use these settings"

    run = start_run(build_command(data_files, eval_spec, out, per_source=64, epochs=1, seeds=[0]), out)
    run.status(); tail(run.log); stop_run(run)

The page itself (``views/validate.py``) only draws these; the background runs themselves are managed by
:mod:`ecisem_core.downstream.background`. Longer than 400 lines because reading a results folder, its display
tables and the calibrated-settings hand-off to the sidebar are one contract with the page; splitting them would
scatter the page's logic over modules that no one else uses.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ecisem_core.config import ScoreConfig, Setting, config_class
from ecisem_core.downstream.calibrate import grid_settings, settings_of
from ecisem_core.confine import checked
from ecisem_core.errors import InputError
from ecisem_core.downstream.background import (  # noqa: F401 - the page uses them through this module
    LOG_FILE, RUN_FILE, SMALL_EVAL_PASSAGES, SMALL_EVAL_QUERIES, Run, build_command, get_run, progress, start_run,
    stop_run, tail,
)
from ecisem_core.ui.paths import data_root, resolve_tree_under_root, resolve_under_root
from ecisem_core.ui.state import nearest_option, ui_coerce, ui_symbol, widget_key
from ecisem_core.report.figures import agreement_figure

BASE_SOURCE = "(base)"
"""Name of the untrained-base row in ``validation.csv`` (``ecisem_core.downstream.validate.BASE_SOURCE``)."""
REQUIRED: dict[str, tuple[str, ...]] = {
    "validation.csv": ("source", "n_triplets", "n_seeds", "ndcg10_mean", "ndcg10_sd", "mrr10_mean", "mrr10_sd",
                       "recall100_mean", "recall100_sd"),
    "agreement.csv": ("score", "n_sources", "kendall_tau", "kendall_ci_low", "kendall_ci_high", "spearman",
                      "spearman_ci_low", "spearman_ci_high"),
}
"""Files a results folder must hold, and the columns the page needs from each."""
CALIBRATION_FILE = "calibrated_config.json"
EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "validation_example"
"""The bundled example results folder (written by ``benchmarks/validity_study.py analyse``), shown before any run."""
RUNS_DIR = "validation-runs"
"""Folder under the data root where runs started from the page write their outputs."""
METRIC_LABELS = {"ndcg10": "nDCG@10", "mrr10": "MRR@10", "recall100": "Recall@100"}
SCORE_LABELS = {"eci_sem": "ECI_sem", "eci_v1": "classic ECI", "c": "c · consistency (mean)",
                "h": "h · locality (mean)", "rho": "ρ · residuality (mean)", "w": "w · weight (mean)"}
DEFAULT_DIMS = {"all-MiniLM-L6-v2": 384}
"""Embedding dimension of known base models (κ is saved absolute; the sidebar holds κ/d)."""


class ResultsError(InputError):
    """A results folder that cannot be shown (missing or unreadable file); the message says which and why."""


# ------------------------------------------------------------------------------------------------ reading results


@dataclass
class Calibration:
    """The calibrated settings of a run and how far to trust them (from ``calibrated_config.json``)."""

    config: ScoreConfig
    settings: dict[str, float]          # tau, alpha, beta, gamma, kappa (absolute)
    n_sources: int | None
    n_seeds: int | None
    loo_kendall: float | None           # out-of-sample (leave one source out): the number to quote
    loo_spearman: float | None
    in_sample_kendall: float | None     # optimistic
    default_kendall: float | None       # the starting settings (not fitted)


@dataclass
class Results:
    """One ``ecisem validate`` output folder, read and checked."""

    folder: Path
    table: pd.DataFrame                       # validation.csv
    agreement: pd.DataFrame                   # agreement.csv
    scores: pd.DataFrame | None               # scores.csv (index: source), None if missing/unreadable
    summary: dict[str, Any]                   # summary.json ({} if missing/unreadable)
    calibration: Calibration | None
    calibration_note: str = ""                # why there is no calibration, when there is none
    notes: list[str] = field(default_factory=list)   # non-fatal problems, in plain words

    @property
    def n_sources(self) -> int:
        return int(self.table["trained"].sum())

    @property
    def n_seeds(self) -> int:
        trained = self.table[self.table["trained"]]
        return int(trained["n_seeds"].max()) if len(trained) else 0


def _read_csv(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        raise ResultsError(f"{name} is missing — is this an `ecisem validate --out` folder?", str(path))
    try:
        df = pd.read_csv(checked(path))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise ResultsError(f"{name} cannot be read as CSV ({str(exc).splitlines()[0] if str(exc) else exc})",
                           str(path)) from None
    missing = [c for c in REQUIRED.get(name, ()) if c not in df.columns]
    if missing:
        raise ResultsError(f"{name} lacks the column(s) {', '.join(missing)}", str(path))
    if df.empty:
        raise ResultsError(f"{name} has no rows", str(path))
    return df


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def read_calibration(path: Path) -> Calibration:
    """``calibrated_config.json``: the settings (``ScoreConfig.load``) and the trust numbers beside them."""
    config = config_class().load(checked(path))   # InputError with file/line on bad JSON or unknown settings
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    cal = raw.get("calibration") if isinstance(raw, dict) and isinstance(raw.get("calibration"), dict) else {}
    rests = cal.get("rests_on") or {}
    agr = cal.get("agreement") or {}
    loo, ins, dflt = (agr.get(k) or {} for k in ("leave_one_out", "in_sample", "default_settings"))
    settings = settings_of(config, None)  # an unset κ is NaN here: take the absolute value the file records
    recorded = cal.get("settings") or {}
    for name, value in settings.items():
        if not math.isfinite(value) and _num(recorded.get(name)) is not None:
            settings[name] = _num(recorded.get(name))
    n_src, n_seeds = rests.get("sources"), rests.get("seeds")
    return Calibration(config=config, settings=settings,
                       n_sources=int(n_src) if _num(n_src) is not None else None,
                       n_seeds=int(n_seeds) if _num(n_seeds) is not None else None,
                       loo_kendall=_num(loo.get("kendall_tau")), loo_spearman=_num(loo.get("spearman")),
                       in_sample_kendall=_num(ins.get("kendall_tau")), default_kendall=_num(dflt.get("kendall_tau")))


def read_results(folder: str | Path) -> Results:
    """Read and check a results folder. Raises :class:`ResultsError` (a readable message naming the file) when
    ``validation.csv`` or ``agreement.csv`` is missing or unusable; anything else missing or bad becomes a note."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultsError("not a folder", str(folder))
    table = _read_csv(folder, "validation.csv")
    if "trained" not in table.columns:
        table["trained"] = table["source"].astype(str) != BASE_SOURCE
    table["trained"] = table["trained"].astype(str).str.lower().isin(("true", "1"))
    table["source"] = table["source"].astype(str)
    agreement = _read_csv(folder, "agreement.csv")
    notes: list[str] = []
    scores = None
    try:
        scores = pd.read_csv(checked(folder / "scores.csv"), index_col=0)
        scores.index = scores.index.astype(str)
    except FileNotFoundError:
        notes.append("scores.csv is missing: the ECI_sem-vs-nDCG@10 panel of the plot is left out")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        notes.append("scores.csv cannot be read: the ECI_sem-vs-nDCG@10 panel of the plot is left out")
    summary: dict[str, Any] = {}
    try:
        loaded = json.loads(checked(folder / "summary.json").read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else {}
        if not isinstance(loaded, dict):
            notes.append("summary.json does not hold a JSON object; run details are not shown")
    except FileNotFoundError:
        notes.append("summary.json is missing; run details are not shown")
    except (OSError, ValueError) as exc:
        notes.append(f"summary.json cannot be read ({exc}); run details are not shown")
    calibration, cal_note = None, ""
    path = folder / CALIBRATION_FILE
    if path.is_file():
        try:
            calibration = read_calibration(path)
        except InputError as exc:
            cal_note = f"{CALIBRATION_FILE} cannot be used: {exc}"
    else:
        reason = (summary.get("calibration") or {}).get("reason") if isinstance(summary.get("calibration"),
                                                                                  dict) else None
        cal_note = (f"No calibrated settings in this folder: {reason}." if reason else
                    f"No calibrated settings in this folder ({CALIBRATION_FILE} is written when the run had at "
                    "least 3 sources and calibration was on).")
    trained = table.loc[table["trained"], "ndcg10_mean"].astype(float)
    if len(trained) >= 2 and trained.nunique() == 1:
        notes.append("every source reached the same nDCG@10, so the downstream ranking is undefined and so is the "
                     "agreement: use a larger or harder evaluation set, or more triplets per source")
    return Results(folder, table, agreement, scores, summary, calibration, cal_note, notes)


def find_result_folders(root: Path | None = None, max_depth: int = 4, limit: int = 200) -> list[Path]:
    """Folders under the data root holding a ``validation.csv`` (newest first), at most ``max_depth`` deep;
    run caches are not descended into."""
    root = (root or data_root()).resolve()
    found: list[Path] = []
    if not root.is_dir():
        return found
    base_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if "validation.csv" in filenames:
            found.append(here)
        if len(here.parts) - base_depth >= max_depth:
            dirnames.clear()
        dirnames[:] = sorted(d for d in dirnames if d != "cache" and not d.startswith("."))
        if len(found) >= limit:
            break
    return sorted(found, key=lambda p: (p / "validation.csv").stat().st_mtime, reverse=True)


def results_folder(user_path: str, root: Path | None = None) -> Path:
    """A results folder the user typed, refused outside the data root (:func:`paths.resolve_under_root`)."""
    path = resolve_under_root(user_path, root)
    if not path.is_dir():
        raise InputError(f"{user_path!r} is a file; give the folder written by `ecisem validate --out`")
    return path


# ------------------------------------------------------------------------------------------------ display tables


def _pm(mean: Any, sd: Any) -> str:
    m, s = _num(mean), _num(sd)
    if m is None:
        return "—"
    return f"{m:.4f} ± {s:.4f}" if s is not None else f"{m:.4f}"


def downstream_table(table: pd.DataFrame) -> pd.DataFrame:
    """validation.csv for display: one row per source (the untrained base labelled so), each metric as
    "mean ± sd" over seeds (no ± with one seed), Δ nDCG@10 vs the base and the downstream rank."""
    out = pd.DataFrame({
        "rank": [("" if not t else (str(int(r)) if _num(r) is not None else ""))
                 for t, r in zip(table["trained"], table.get("downstream_rank", pd.Series([None] * len(table))))],
        "source": [s if t else "untrained base" for s, t in zip(table["source"], table["trained"])],
        "triplets": table["n_triplets"].astype(int),
        "seeds": table["n_seeds"].astype(int),
    })
    for m, label in METRIC_LABELS.items():
        out[label] = [_pm(a, b) for a, b in zip(table[f"{m}_mean"], table[f"{m}_sd"])]
    if "delta_ndcg10" in table.columns:
        out["Δ nDCG@10 vs base"] = [("—" if not t or _num(d) is None else f"{float(d):+.4f}")
                                    for d, t in zip(table["delta_ndcg10"], table["trained"])]
    return out


def _ci(lo: Any, hi: Any) -> str:
    a, b = _num(lo), _num(hi)
    return "—" if a is None or b is None else f"[{a:+.2f}, {b:+.2f}]"


def _val(x: Any) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:+.3f}"


def agreement_table(agreement: pd.DataFrame) -> pd.DataFrame:
    """agreement.csv for display: the score's plain name, Kendall τ and Spearman ρ each with its 95% bootstrap CI
    over sources, and the number of sources they rest on."""
    return pd.DataFrame({
        "score": [SCORE_LABELS.get(str(s), str(s)) for s in agreement["score"]],
        "Kendall τ": [_val(x) for x in agreement["kendall_tau"]],
        "τ 95% CI": [_ci(a, b) for a, b in zip(agreement["kendall_ci_low"], agreement["kendall_ci_high"])],
        "Spearman ρ": [_val(x) for x in agreement["spearman"]],
        "ρ 95% CI": [_ci(a, b) for a, b in zip(agreement["spearman_ci_low"], agreement["spearman_ci_high"])],
        "sources": agreement["n_sources"].astype(int),
    })


def figure(results: Results) -> Any:
    """The agreement plot (plotly): ``ecisem_core.downstream.validate.agreement_figure`` with plain score names, sized by
    the page."""
    agr = results.agreement.copy()
    agr["score"] = [SCORE_LABELS.get(str(s), str(s)).split(" (")[0] for s in agr["score"]]
    scores = ({} if results.scores is None else
              {c: results.scores[c].astype(float) for c in results.scores.columns})
    fig = agreement_figure(results.table, agr, scores)
    titles = ("Kendall τ and Spearman ρ per score (95% bootstrap CI)", "ECI_sem vs downstream nDCG@10")
    for ann, title in zip(fig.layout.annotations, titles):   # the subplot titles come first
        ann.text = title
    fig.update_layout(width=None, height=460, margin=dict(l=50, r=20, t=60, b=40))
    return fig


def run_details(summary: Mapping[str, Any]) -> str:
    """One line on what the run was (base model, budget, eval set, timing) from summary.json ('' if unknown)."""
    parts = []
    if summary.get("base_model"):
        parts.append(f"base model {summary['base_model']}")
    budget = summary.get("budget") or {}
    if budget:
        parts.append(f"{budget.get('per_source_used', budget.get('per_source', '?'))} triplets/source × "
                     f"{budget.get('epochs', '?')} epoch(s), batch {budget.get('batch_size', '?')}")
    ev = summary.get("eval")
    if isinstance(ev, Mapping):
        q, p = ev.get("n_queries"), ev.get("n_passages")
        if q is not None:
            parts.append(f"eval {q} queries / {p} passages" + (f" ({ev['name']})" if ev.get("name") else ""))
    secs = (summary.get("seconds") or {}).get("total")
    if _num(secs) is not None:
        parts.append(f"{float(secs) / 60:.1f} min")
    return " · ".join(parts)


# ------------------------------------------------------------------------------------------------ sidebar settings


def embedding_dim(summary: Mapping[str, Any]) -> int | None:
    """d of the run's base model: ``summary["embedding_dim"]`` if present, the known default model, or a local
    sentence-transformers folder's pooling config; None when unknown."""
    for key in ("embedding_dim", "dim"):
        if _num(summary.get(key)):
            return int(summary[key])
    base = str(summary.get("base_model") or "")
    for name, dim in DEFAULT_DIMS.items():
        if base == "default" or base.startswith(name) or base.endswith("/" + name):
            return dim
    pooling = Path(base) / "1_Pooling" / "config.json"
    try:
        return int(json.loads(pooling.read_text(encoding="utf-8"))["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def sidebar_settings() -> list[Setting]:
    """The calibrated settings that have a sidebar widget (τ, α, β, γ, κ/d)."""
    return [s for s in grid_settings() if s.label is not None]


def sidebar_values(cal: Calibration, dim: int | None) -> tuple[dict[str, float], list[str]]:
    """Session-state values of the sidebar's widgets for calibrated settings (:func:`sidebar_settings`), and notes
    on anything adjusted to the widgets' ranges/steps (or a per-dimension setting, κ, left alone when d is
    unknown)."""
    values: dict[str, float] = {}
    notes: list[str] = []
    for s in sidebar_settings():
        x = float(cal.settings.get(s.name, float("nan")))
        if s.per_dim:
            if not (dim and math.isfinite(x) and x > 0):
                notes.append(f"{s.short} left unchanged: the base model's dimension d is unknown, so {ui_symbol(s)} "
                             "cannot be set")
                continue
            ratio = x / dim
            nearest = nearest_option(s, ratio)
            if not math.isclose(nearest, ratio, rel_tol=1e-6):
                notes.append(f"{ui_symbol(s)} = {ratio:g} is not a slider step; set to {nearest:g}")
            values[widget_key(s)] = float(nearest)
            continue
        if not math.isfinite(x):
            notes.append(f"{s.name} left unchanged: no calibrated value")
            continue
        lo, hi = s.ui_range
        if not lo <= x <= hi:
            clamped = min(max(x, lo), hi)
            notes.append(f"{s.name} = {x:g} is outside the slider's range; set to {clamped:g}")
            x = clamped
        values[widget_key(s)] = ui_coerce(s, x)
    return values, notes


def apply_settings(state: Any, values: Mapping[str, float]) -> None:
    """Write sidebar values into session state (call from a button callback, before the widgets are drawn)."""
    for key, value in values.items():
        state[key] = value


# ------------------------------------------------------------------------------------------------ background runs


def dataset_files(dataset_id: str, demo: Path, root: Path | None = None) -> list[Path] | None:
    """Training files of the sidebar's dataset: the demo file, or the path under the data root; None for an
    upload (the page writes its table to a file in the run folder instead)."""
    if dataset_id == "demo":
        return [demo]
    if dataset_id.startswith("path:"):
        return [resolve_tree_under_root(dataset_id[len("path:"):], root)]
    return None


def parse_seeds(text: str) -> list[int]:
    """"0 1 2" or "0,1,2" → [0, 1, 2]; InputError otherwise."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise InputError(f"seeds must be whole numbers separated by spaces (got {text!r})") from None
    if not seeds or any(s < 0 for s in seeds):
        raise InputError("give at least one seed (whole numbers ≥ 0)")
    return list(dict.fromkeys(seeds))


def eval_argument(text: str, root: Path | None = None) -> str:
    """The ``--eval`` value: ``split`` / ``split:FRACTION`` as typed, else a file or folder under the data root
    (refused elsewhere)."""
    text = (text or "").strip()
    if text == "split" or text.startswith("split:"):
        return text
    return str(resolve_tree_under_root(text, root))


def new_run_folder(root: Path | None = None, now: float | None = None) -> Path:
    """A fresh ``validation-runs/run-YYYYmmdd-HHMMSS[-n]`` folder under the data root (created)."""
    base = (root or data_root()).resolve() / RUNS_DIR
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    path, n = base / f"run-{stamp}", 1
    while path.exists():
        n += 1
        path = base / f"run-{stamp}-{n}"
    path.mkdir(parents=True)
    return path
