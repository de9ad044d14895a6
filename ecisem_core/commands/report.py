"""``ecisem report``: one self-contained HTML file (leaderboard, contributions, P(A > B), map, flagged triplets,
settings) that opens offline."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecisem_core.errors import InputError
from ecisem_core.report.html import POINTS_PER_SOURCE, TOP_FLAGGED, report_html, write_report
from ecisem_core.score import score_prepared
from ecisem_core.commands.options import (
    add_data_options, add_encoder_options, add_fn_encoder_option, add_metric_options, config_from_args,
    load_and_prepare,
)

DESCRIPTION = """Score every negative source in DATA and write one self-contained HTML report: the settings used,
the leaderboard with 95% intervals, the Shapley contributions of each term, the P(A > B) heat map, a 2-D map of
the embeddings and the flagged triplets (highest fn_score first, with reasons). plotly.js is inlined, nothing is
loaded from the network: the file opens offline. Exit codes: 0 ok, 2 bad input, 1 internal error."""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="score and write one self-contained HTML report", description=DESCRIPTION,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p)
    add_encoder_options(p)
    add_fn_encoder_option(p)
    add_metric_options(p)
    p.add_argument("--out", default="report.html", metavar="FILE", help="output HTML file (default: %(default)s)")
    p.add_argument("--top", type=int, default=TOP_FLAGGED, metavar="N",
                   help="flagged triplets listed (default: %(default)s)")
    p.add_argument("--points-per-source", type=int, default=POINTS_PER_SOURCE, metavar="N",
                   help="triplets per source drawn on the 2-D map (default: %(default)s)")
    p.add_argument("--map", choices=["umap", "pca"], default="umap",
                   help="2-D map method: UMAP (as the dashboard, cached) or PCA (fast) (default: %(default)s)")
    p.add_argument("--title", default="ECIsem Explorer report", help="title of the page (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return p


def run(args: argparse.Namespace) -> int:
    if args.top < 0 or args.points_per_source < 1:
        raise InputError("--top must be >= 0 and --points-per-source >= 1")
    if Path(args.out).is_dir():
        raise InputError("--out must be a file, but this is a folder", args.out)
    config = config_from_args(args)
    loaded, prep = load_and_prepare(args, config)
    result = score_prepared(prep, config)
    text = report_html(prep, result, data=args.data, hybrids=args.hybrid, top=args.top,
                       points_per_source=args.points_per_source, load_summary=loaded.report.summary(),
                       title=args.title, cache_dir=args.cache_dir, use_umap=args.map == "umap")
    path = write_report(args.out, text)
    if not args.quiet:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0
