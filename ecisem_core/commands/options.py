"""Options shared by sub-commands: data files, encoder, metric settings (with their defaults in --help)."""
from __future__ import annotations

import argparse
import sys

from ecisem_core import config as C
from ecisem_core.config import ScoreConfig
from ecisem_core.embed.encoders import DEFAULT_ENCODER, Encoder, get_encoder
from ecisem_core.downstream.hybrid import add_hybrids
from ecisem_core.io.load import LoadResult, read_triplets
from ecisem_core.score import Prepared, prepare


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="triplet files (JSONL/CSV/TSV/Parquet, Tevatron/FlagEmbedding JSONL, MS MARCO triples TSV, "
                        "sentence-transformers dataset folders); the file stem is the source unless a 'source' "
                        "column says otherwise")
    p.add_argument("--hybrid", action="append", default=[], metavar="A+B",
                   help="add a hybrid source mixing equal shares of existing sources (repeatable), e.g. bm25+llm")


def add_encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", default=None, metavar="NAME|PATH",
                   help=f"target encoder: 'default' ({DEFAULT_ENCODER}, offline), a sentence-transformers name or "
                        "local path, 'tfidf' (TF-IDF/LSA baseline) or 'precomputed:FILE' (default: %(default)s → "
                        f"{DEFAULT_ENCODER})")
    p.add_argument("--query-prompt", default="", help="prefix for queries, e.g. 'query: ' for E5 (default: none)")
    p.add_argument("--passage-prompt", default="", help="prefix for passages, e.g. 'passage: ' (default: none)")
    p.add_argument("--cache-dir", default=None,
                   help="embedding cache folder (default: $ECISEM_CACHE_DIR or ./.ecisem_cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")


def add_metric_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("metric settings (ECI_SPEC §4)")
    g.add_argument("--config", default=None, metavar="FILE",
                   help="JSON settings (e.g. calibrated by 'ecisem validate'); flags below override it")
    g.add_argument("--tau", type=float, default=None, help=f"temperature τ (default {C.TAU})")
    g.add_argument("--alpha", type=float, default=None, help=f"exponent of target consistency (default {C.ALPHA})")
    g.add_argument("--beta", type=float, default=None, help=f"exponent of semantic locality (default {C.BETA})")
    g.add_argument("--gamma", type=float, default=None, help=f"exponent of lexical residuality (default {C.GAMMA})")
    g.add_argument("--kappa", type=float, default=None, help="diversity strength κ (default d/ε² = 2d)")
    g.add_argument("--sample-size", type=int, default=None, help=f"triplets per source N (default {C.SAMPLE_SIZE})")
    g.add_argument("--seed", type=int, default=None, help=f"sampling/bootstrap seed (default {C.SEED})")
    g.add_argument("--bootstrap", type=int, default=None, help=f"bootstrap resamples B (default {C.BOOTSTRAP})")
    g.add_argument("--tokenizer", choices=["word", "encoder"], default=None,
                   help=f"tokenizer of lexical residuality (default {C.TOKENIZER})")
    g.add_argument("--idf-corpus", default=None, metavar="FILE",
                   help="IDF corpus: text file (one passage a line) or JSONL with 'text' (default: loaded passages)")


FIELD_FLAGS = ("tau", "alpha", "beta", "gamma", "kappa", "sample_size", "seed", "bootstrap", "tokenizer",
               "idf_corpus")


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """ScoreConfig from --config FILE, then each flag that was given."""
    base = ScoreConfig.load(args.config) if getattr(args, "config", None) else ScoreConfig()
    changes = {f: getattr(args, f) for f in FIELD_FLAGS if getattr(args, f, None) is not None}
    return base.replace(**changes) if changes else base


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    return get_encoder(args.encoder, query_prompt=args.query_prompt, passage_prompt=args.passage_prompt)


def load_and_prepare(args: argparse.Namespace, config: ScoreConfig) -> tuple[LoadResult, Prepared]:
    """The shared first half of ``score`` and ``report``: read DATA (the load report on stderr unless
    ``--quiet``), add ``--hybrid`` sources, then embed and prepare them (progress bar unless ``--quiet``)."""
    loaded = read_triplets(args.data)
    if not args.quiet:
        print(loaded.report.summary(), file=sys.stderr)
    triplets = add_hybrids(loaded.triplets, args.hybrid, seed=config.seed)
    prep = prepare(triplets, encoder_from_args(args), config, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                   show_progress=not args.quiet)
    return loaded, prep
