"""``ecisem flag``: likely false negatives and junk negatives, with scores and reasons, for annotation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.curation.exports import export_argilla, export_candidates, export_label_studio
from ecisem_core.io.load import read_triplets
from ecisem_core.curation.fn_score import cross_encoder_scores, flag_triplets
from ecisem_core.embed.fingerprint import check_model_spec
from ecisem_core.io.atomic import write_file_atomically
from ecisem_core.embed.encoders import get_encoder
from ecisem_core.score import prepare
from ecisem_core.commands.options import add_encoder_options, add_fn_encoder_option, encoder_from_args

FORMATS = ("auto", "jsonl", "csv", "label-studio", "argilla")
"""Output formats; ``auto`` follows the suffix of --out (.csv → CSV, anything else → JSONL)."""

DESCRIPTION = """Flag suspicious negatives in DATA (docs/METRIC.md §5; the formula is in curation/fn_score.py).

Every triplet is embedded with the target encoder (cached), then scored: fn_score in [0, 1] (how likely the
negative is relevant, i.e. a false negative), fn_flag (a false-negative reason fired), junk_flag (empty, very
short, boilerplate repeated across queries, LLM preamble or refusal, copy of the positive) and fn_reasons.
Writes the flagged triplets (false-negative candidates with fn_score >= --min-score, and junk unless --no-junk),
sorted by source then fn_score, as JSONL or CSV, Label Studio tasks (+ labeling config) or Argilla records
(+ settings). Exit codes: 0 ok, 2 bad input, 1 internal error."""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("flag", help="flag likely false negatives and junk (candidates for annotation)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", metavar="DATA", help="triplet files (any format 'ecisem score' reads)")
    add_encoder_options(p)
    add_fn_encoder_option(p)
    p.add_argument("--out", default="candidates.jsonl", metavar="FILE", help="output file (default: %(default)s)")
    p.add_argument("--format", choices=FORMATS, default="auto", help="output format (default: by --out suffix)")
    p.add_argument("--min-score", type=float, default=0.0, metavar="P",
                   help="keep false-negative candidates with fn_score >= P (default: %(default)s, every flagged one)")
    p.add_argument("--source", action="append", default=[], metavar="NAME",
                   help="only these sources (repeatable; default: all)")
    p.add_argument("--no-junk", action="store_true", help="leave junk negatives out of the output")
    p.add_argument("--all", action="store_true", help="write every triplet, flagged or not")
    p.add_argument("--cross-encoder", default=None, metavar="NAME|PATH",
                   help="add cross-encoder evidence from this local sentence-transformers CrossEncoder (offline)")
    p.add_argument("--with-reasons", action="store_true",
                   help="label-studio / argilla: show annotators why each triplet was flagged (its reasons, FN "
                        "score and suggested verdict); left out by default because it biases their answers")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return p


def select_candidates(flagged: pd.DataFrame, min_score: float = 0.0, junk: bool = True,
                      everything: bool = False) -> pd.DataFrame:
    """Rows to write: false-negative candidates with fn_score ≥ min_score, plus junk (when ``junk``), sorted by
    source then fn_score (descending); every row when ``everything``."""
    if everything:
        keep = np.ones(len(flagged), dtype=bool)
    else:
        keep = (flagged["fn_flag"].to_numpy(bool) & (flagged["fn_score"].to_numpy() >= min_score))
        if junk:
            keep |= flagged["junk_flag"].to_numpy(bool)
    out = flagged.loc[keep]
    return out.sort_values(["source", "fn_score"], ascending=[True, False], kind="stable")


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.min_score <= 1.0:
        raise InputError(f"--min-score must be in [0, 1] (got {args.min_score})")
    if Path(args.out).is_dir():
        raise InputError("--out must be a file, but this is a folder", args.out)
    if args.cross_encoder:
        check_model_spec(args.cross_encoder, "--cross-encoder")
    loaded = read_triplets(args.data)
    if not args.quiet:
        print(loaded.report.summary(), file=sys.stderr)
    triplets = loaded.triplets
    if args.source:
        known = sorted(triplets["source"].astype(str).unique())
        unknown = sorted(set(args.source) - set(known))
        if unknown:
            raise InputError(f"unknown source(s) {unknown}; the data has {known}")
        triplets = triplets[triplets["source"].astype(str).isin(args.source)]
    prep = prepare(triplets, encoder_from_args(args), cache_dir=args.cache_dir, use_cache=not args.no_cache,
                   fn_encoder=get_encoder(args.fn_encoder) if args.fn_encoder else None,
                   show_progress=not args.quiet)
    table = prep.triplets.assign(s_qp=prep.s_qp, s_qn=prep.s_qn, s_pn=prep.s_pn)
    flags = prep.flags
    if args.cross_encoder:
        ce = cross_encoder_scores(table, args.cross_encoder)
        table = table.assign(ce_qp=ce[:, 0], ce_qn=ce[:, 1])
        flags = flag_triplets(table)
    flagged = pd.concat([table, flags], axis=1)
    out_rows = select_candidates(flagged, args.min_score, junk=not args.no_junk, everything=args.all)

    out = Path(args.out)
    if out.is_dir():
        raise InputError("--out must be a file, but this is a folder", out)
    fmt = args.format
    try:
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "label-studio":
            extra = export_label_studio(out_rows, out, with_reasons=args.with_reasons)
        elif fmt == "argilla":
            extra = export_argilla(out_rows, out, with_reasons=args.with_reasons)
        else:
            if fmt == "auto":
                fmt = "csv" if out.suffix.lower() == ".csv" else "jsonl"
            write_file_atomically(out, lambda p: export_candidates(out_rows, p, fmt))
            extra = None
    except OSError as exc:
        raise InputError(f"cannot write the output ({exc.strerror or exc})", out) from None
    if not args.quiet:
        summary = flagged.groupby("source").agg(
            n=("fn_flag", "size"), false_negative=("fn_flag", "sum"), junk=("junk_flag", "sum")
        )
        print(summary.to_string(), file=sys.stderr)
        also = f" and {extra}" if extra else ""
        print(f"wrote {len(out_rows)} triplets to {out}{also}", file=sys.stderr)
    return 0
