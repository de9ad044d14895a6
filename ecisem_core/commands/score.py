"""``ecisem score``: per-source ECI_sem with CI, contributions and classic ECI → sources.csv, triplets.parquet."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.commands.options import (
    add_data_options, add_encoder_options, add_fn_encoder_option, add_metric_options, config_from_args,
    load_and_prepare,
)
from ecisem_core.config import ScoreConfig
from ecisem_core.io.csvsafe import safe_csv
from ecisem_core.metric.presets import preset_of
from ecisem_core.report.outputs import check_output_folder, now, write_outputs
from ecisem_core.score import score_prepared

OUTPUTS = ("sources.csv", "triplets.parquet", "settings.json", "load_report.json")
"""Files of one run, written into a temporary folder and moved into place together with run.json."""

DESCRIPTION = """Score every negative source in DATA.

Writes DIR/sources.csv (one row per source: source, n, eci_sem, eci_sem_per_dim, ci_low, ci_high, info, diversity,
phi_c, phi_h, phi_rho, phi_div, eci_v1, fn_rate, then rank, junk_rate, k, signal, margin, n_sampled, stability),
DIR/triplets.parquet (one row per triplet: ids, source, s_qp, s_qn, s_pn, c, h, rho, w, fn_score, fn_reasons, ...),
DIR/settings.json (the settings used), DIR/load_report.json and DIR/run.json (manifest: inputs with sha256,
settings, versions, start/end time, files with size and sha256). The folder is written beside DIR and moved into
place in one step: DIR is either the complete previous run or the complete new one. Exit codes: 0 ok, 2 bad input, 1 internal error."""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("score", help="score negative sources (sources.csv, triplets.parquet)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p)
    add_encoder_options(p)
    add_fn_encoder_option(p)
    add_metric_options(p)
    p.add_argument("--out", default="ecisem_out", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no leaderboard on stdout")
    return p


def all_zero_warning(sources: pd.DataFrame, config: ScoreConfig) -> str | None:
    """A warning when every source scores ECI_sem 0 (the settings leave no weight), else ``None``."""
    values = pd.to_numeric(sources.get("eci_sem", pd.Series(dtype=float)), errors="coerce").to_numpy(float)
    if len(values) == 0 or not np.all(np.nan_to_num(values, nan=0.0) == 0.0):
        return None
    used = ", ".join(f"{k}={getattr(config, k)}" for k in ("tau", "alpha", "beta", "gamma", "fn_penalty")
                     if hasattr(config, k))
    return (f"every source has ECI_sem 0 with these settings ({used}): no triplet keeps a weight above 0, so the "
            "ranking is meaningless; lower the exponents or the false-negative penalty, or raise tau")


def run(args: argparse.Namespace) -> int:
    started = now()
    check_output_folder(args.out, OUTPUTS)
    config = config_from_args(args)
    loaded, prep = load_and_prepare(args, config)
    result = score_prepared(prep, config)
    out = Path(args.out)
    settings = {"preset": preset_of(config) or "custom", "config": config.to_dict(), "encoder": result.encoder_id,
                "fn_encoder": args.fn_encoder or "the target encoder", "dim": result.dim,
                "kappa": config.kappa_for(result.dim), "data": [str(d) for d in args.data], "hybrids": args.hybrid}
    warning = all_zero_warning(result.sources, config)
    if warning:
        settings["warning"] = warning
        print(f"ecisem: warning: {warning}", file=sys.stderr)
    report = loaded.report.to_dict()
    writers = {
        "sources.csv": lambda p: safe_csv(result.sources).to_csv(p, index=False),
        "triplets.parquet": lambda p: result.triplets.to_parquet(p, index=False),
        "settings.json": lambda p: p.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8"),
        "load_report.json": lambda p: p.write_text(json.dumps(report, indent=2, default=str) + "\n",
                                                   encoding="utf-8"),
    }
    write_outputs(out, writers, inputs=args.data, settings=settings, started=started, command="score")
    if not args.quiet:
        cols = ["source", "n", "eci_sem", "ci_low", "ci_high", "diversity", "eci_v1", "fn_rate", "fn_share"]
        name = settings["preset"]
        print(f"settings: preset '{name}'" if name != "custom" else "settings: custom (no preset matches them)")
        print(result.sources[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"wrote {out / 'sources.csv'} and {out / 'triplets.parquet'}", file=sys.stderr)
    return 0
