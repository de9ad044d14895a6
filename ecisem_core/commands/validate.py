"""`ecisem validate`: fine-tune briefly on each source, evaluate retrieval, measure how well ECI_sem (and classic ECI,
and each term) predicted the downstream ranking, and calibrate the settings. The work is in
:mod:`ecisem_core.downstream.validate`, :mod:`ecisem_core.io.evaldata` and :mod:`ecisem_core.downstream.calibrate`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecisem_core.io import evaldata
from ecisem_core.downstream import agreement, guards, runs, training
from ecisem_core.downstream.evalsets import hard_split
from ecisem_core.downstream import validate as v
from ecisem_core.config import config_class
from ecisem_core.errors import InputError
from ecisem_core.report.validation import write_outputs
from ecisem_core.io.load import read_triplets

EVAL_QUERIES: int = 500
"""Default number of evaluation queries kept (seeded sample; 0 keeps all)."""
EVAL_PASSAGES: int = 5000
"""Default evaluation corpus size: the kept queries' relevant passages plus random distractors (0 keeps all)."""
DEFAULT_OUT: str = "validation"

EPILOG = """\
outputs (in --out DIR):
  validation.csv          per source (+ the untrained base): n_triplets, n_queries, n_seeds, ndcg10/mrr10/recall100
                          mean and sd over seeds, delta_ndcg10 vs the base, downstream_rank
  agreement.csv           Kendall tau and Spearman (95% bootstrap CI over sources, p-value) between the downstream
                          ranking (mean nDCG@10) and ECI_sem, classic ECI, and the per-source means of c, h, rho, w
  scores.csv              those per-source scores
  agreement.html          plot of the above (self-contained)
  calibrated_config.json  calibrated tau, alpha, beta, gamma, kappa (ecisem score --config FILE); written when there
                          are >= 3 sources; its leave-one-source-out agreement is the out-of-sample one
  summary.json            settings, sizes, leaks removed, headline numbers, timings

Runs are cached per (source content, base model, budget, eval set, seed) in --cache-dir: Ctrl-C keeps the
completed runs, the same command resumes, and adding a source only trains that source.

example:
  ecisem validate bm25.csv llm.jsonl dense.jsonl --eval msmarco_dev_beir.tsv --per-source 500 --seeds 0 1 2
"""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser(
        "validate",
        help="fine-tune briefly on each source and check how well the scores predicted it; calibrate the settings",
        description="Fine-tune a copy of the base model on each source (MultipleNegativesRankingLoss: in-batch "
                    "negatives + the source's hard negative), evaluate nDCG@10 / MRR@10 / Recall@100 on EVAL, and "
                    "measure the agreement of ECI_sem, classic ECI and each term with the downstream ranking.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", metavar="DATA", help="training triplet files, one source per file or a "
                   "'source' column (any format `ecisem score` reads)")
    p.add_argument("--eval", required=True, metavar="EVAL",
                   help="evaluation data: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/*.tsv), a .tsv/.csv of "
                        "query/relevant-passage pairs (columns query_text, gold_passage), or 'split[:FRACTION]' to "
                        f"hold out a share of DATA's queries (default fraction {evaldata.SPLIT_FRACTION}) with hard "
                        "distractors: their own negatives and BM25 neighbours")
    p.add_argument("--eval-split", default=None, metavar="NAME",
                   help="BEIR qrels split (default: test, else dev, else the only qrels file)")
    p.add_argument("--eval-queries", type=int, default=EVAL_QUERIES, metavar="N",
                   help=f"evaluation queries kept, seeded sample; 0 = all (default {EVAL_QUERIES})")
    p.add_argument("--eval-passages", type=int, default=EVAL_PASSAGES, metavar="N",
                   help="evaluation corpus size: relevant passages of the kept queries plus random distractors; "
                        f"0 = all (default {EVAL_PASSAGES})")
    p.add_argument("--base-model", default=training.DEFAULT_BASE_MODEL, metavar="NAME|PATH",
                   help="model to fine-tune and target encoder for the scores: 'default' (offline "
                        "all-MiniLM-L6-v2), a sentence-transformers name in the local cache, or a local path "
                        "(default: default)")
    p.add_argument("--per-source", type=int, default=training.PER_SOURCE, metavar="N",
                   help=f"triplets per source; every source gets the same number, the smallest source's size if "
                        f"less (default {training.PER_SOURCE})")
    p.add_argument("--epochs", type=int, default=training.EPOCHS, help=f"epochs (default {training.EPOCHS})")
    p.add_argument("--lr", type=float, default=training.LEARNING_RATE, help=f"peak learning rate (default {training.LEARNING_RATE})")
    p.add_argument("--batch-size", type=int, default=training.BATCH_SIZE,
                   help=f"triplets per batch (default {training.BATCH_SIZE})")
    p.add_argument("--max-seq-length", type=int, default=training.MAX_SEQ_LENGTH, metavar="N",
                   help="truncate texts to N tokens when training and evaluating; 0 = the model's own (256 for "
                        f"MiniLM). Time and memory grow with it: about 4 GB peak at 128 with batch 32, 7.4 GB at 256 "
                        f"(default {training.MAX_SEQ_LENGTH})")
    p.add_argument("--seeds", type=int, nargs="+", default=list(runs.SEEDS), metavar="SEED",
                   help="training seeds; results are mean ± sd over them (default: 0)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="run cache (default: DIR/cache under --out)")
    p.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                   help="fit tau, alpha, beta, gamma, kappa to the downstream ranking with leave-one-source-out "
                        "cross-validation (default: on; needs >= 3 sources)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="ECI_sem settings (JSON from ScoreConfig.save or a calibrated_config.json) for the scores "
                        "being checked (default: the built-in defaults)")
    p.add_argument("--bootstrap", type=int, default=agreement.BOOTSTRAP, metavar="B",
                   help=f"bootstrap resamples over sources for the agreement CIs (default {agreement.BOOTSTRAP})")
    p.add_argument("--allow-weak-eval", action="store_true",
                   help="train even when the evaluation set cannot rank sources (fewer than "
                        f"{guards.MIN_EVAL_QUERIES} queries, or the untrained base at nDCG@10 >= "
                        f"{guards.MAX_BASE_NDCG}); the outputs carry the warning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def load_eval_arg(spec: str, split: str | None, triplets, max_queries: int, max_passages: int):
    """(training triplets, evaluation set) for the --eval argument."""
    if spec == "split" or spec.startswith("split:"):
        fraction = evaldata.SPLIT_FRACTION
        if ":" in spec:
            try:
                fraction = float(spec.split(":", 1)[1])
            except ValueError:
                raise InputError(f"--eval {spec!r}: expected split:FRACTION, e.g. split:0.2") from None
        triplets, data = hard_split(triplets, fraction)
    else:
        data = evaldata.load_eval(spec, split)
    data = evaldata.subsample(data, max_queries or None, max_passages or None)
    return triplets, data


def run(args: argparse.Namespace) -> int:
    for name in ("per_source", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1")
    if args.eval_queries < 0 or args.eval_passages < 0:
        raise InputError("--eval-queries and --eval-passages must be >= 0")
    train = training.TrainConfig(per_source=args.per_source, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                          max_seq_length=args.max_seq_length or None)
    cls = config_class()
    score_config = cls.load(args.config) if args.config else cls()
    triplets = read_triplets(args.data).triplets
    triplets, data = load_eval_arg(args.eval, args.eval_split, triplets, args.eval_queries, args.eval_passages)
    out = Path(args.out)
    cache_dir = Path(args.cache_dir) if args.cache_dir else out / "cache"
    progress = not args.quiet
    if progress:
        print(f"eval: {data.n_queries} queries, {data.n_passages} passages ({data.name}); "
              f"{triplets['source'].nunique()} sources", file=sys.stderr)
    try:
        result = v.run_validation(triplets, data, base_model=args.base_model, train=train, seeds=args.seeds,
                                  cache_dir=cache_dir, score_config=score_config, calibrate=args.calibrate,
                                  allow_weak_eval=args.allow_weak_eval,
                                  progress=progress, n_boot=args.bootstrap)
    except KeyboardInterrupt:
        done = len(list((cache_dir / "runs").glob("*.json"))) if (cache_dir / "runs").is_dir() else 0
        print(f"ecisem validate: interrupted; {done} completed run(s) are cached in {cache_dir}; "
              "run the same command again to resume", file=sys.stderr)
        raise
    paths = write_outputs(result, out)
    print(_report(result), end="")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _report(result: v.ValidationResult) -> str:
    """Plain-text summary for the terminal."""
    cols = ["source", "n_triplets", "n_seeds", "ndcg10_mean", "ndcg10_sd", "mrr10_mean", "recall100_mean",
            "downstream_rank"]
    lines = [result.table[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"), ""]
    agr = result.agreement[["score", "n_sources", "kendall_tau", "kendall_ci_low", "kendall_ci_high", "spearman"]]
    lines += ["agreement with the downstream ranking (mean nDCG@10):",
              agr.to_string(index=False, float_format=lambda x: f"{x:.3f}"), ""]
    cal = result.calibration
    if cal is not None:
        if cal.ok:
            fitted = " ".join(f"{name}={value:g}" for name, value in cal.settings.items())
            lines.append(
                f"calibrated: {fitted}; leave-one-source-out Kendall tau = {cal.loo_kendall:.3f} "
                f"(in-sample {cal.in_sample_kendall:.3f}, defaults {cal.default_kendall:.3f}); "
                f"rests on {cal.n_sources} sources x {cal.n_seeds} seed(s)")
        else:
            lines.append(f"calibration skipped: {cal.reason}")
        lines.append("")
    return "\n".join(lines) + "\n"
