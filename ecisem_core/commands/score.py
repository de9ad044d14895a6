"""``ecisem score``: per-source ECI_sem with CI, contributions and classic ECI → sources.csv, triplets.parquet."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ecisem_core.score import score_prepared
from ecisem_core.commands.options import add_data_options, add_encoder_options, add_metric_options, config_from_args, load_and_prepare

DESCRIPTION = """Score every negative source in DATA.

Writes DIR/sources.csv (one row per source: source, n, eci_sem, eci_sem_per_dim, ci_low, ci_high, info, diversity,
phi_c, phi_h, phi_rho, phi_div, eci_v1, fn_rate, then rank, junk_rate, k, signal, margin, n_sampled, stability),
DIR/triplets.parquet (one row per triplet: ids, source, s_qp, s_qn, s_pn, c, h, rho, w, fn_score, fn_reasons, ...),
DIR/settings.json (the settings used) and DIR/load_report.json. Exit codes: 0 ok, 2 bad input, 1 internal error."""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("score", help="score negative sources (sources.csv, triplets.parquet)", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p)
    add_encoder_options(p)
    add_metric_options(p)
    p.add_argument("--out", default="ecisem_out", metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no leaderboard on stdout")
    return p


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    loaded, prep = load_and_prepare(args, config)
    result = score_prepared(prep, config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.sources.to_csv(out / "sources.csv", index=False)
    result.triplets.to_parquet(out / "triplets.parquet", index=False)
    settings = {"config": config.to_dict(), "encoder": result.encoder_id, "dim": result.dim,
                "kappa": config.kappa_for(result.dim), "data": [str(d) for d in args.data], "hybrids": args.hybrid}
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "load_report.json").write_text(json.dumps(loaded.report.to_dict(), indent=2, default=str) + "\n",
                                          encoding="utf-8")
    if not args.quiet:
        cols = ["source", "n", "eci_sem", "ci_low", "ci_high", "diversity", "eci_v1", "fn_rate"]
        print(result.sources[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(f"wrote {out / 'sources.csv'} and {out / 'triplets.parquet'}", file=sys.stderr)
    return 0
