"""Options shared by sub-commands: data files, encoder, metric settings (with their defaults in --help)."""
from __future__ import annotations

import argparse
import sys

from ecisem_core.config import ScoreConfig, config_class, registry
from ecisem_core.embed.encoders import DEFAULT_ENCODER, Encoder, get_encoder
from ecisem_core.errors import InputError
from ecisem_core.metric.presets import PAPER, get_preset, presets
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


def add_fn_encoder_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fn-encoder", default=None, metavar="NAME|PATH",
                   help="encoder that judges false negatives (the flags and fn_score), e.g. 'default' when the target "
                        "encoder is a weak starting model (default: the target encoder)")


def add_metric_options(p: argparse.ArgumentParser) -> None:
    """``--preset NAME`` or ``--config FILE``, then one flag per registry setting that has one (default ``None``: not given, so the
    file's value or the registry default stands; the help says the default)."""
    g = p.add_argument_group("metric settings (docs/METRIC.md §4)")
    g.add_argument("--preset", default=None, metavar="NAME",
                   help="named settings shipped with the project: " + ", ".join(presets())
                        + f" (default: {PAPER}, the published construction); flags below override it. "
                          "The README says what each was fitted on and how well it agreed with training")
    g.add_argument("--config", default=None, metavar="FILE",
                   help="JSON settings (e.g. calibrated by 'ecisem validate'); flags below override it")
    for s in registry():
        if s.flag is None:
            continue
        kw: dict = {"dest": s.name, "default": None, "help": s.help.format(default=s.default)}
        if s.choices is not None:
            kw["choices"] = list(s.choices)
        elif s.kind != "str":
            kw["type"] = s.type
        if s.metavar is not None:
            kw["metavar"] = s.metavar
        g.add_argument(s.flag, **kw)


def config_from_args(args: argparse.Namespace) -> ScoreConfig:
    """ScoreConfig from --preset NAME or --config FILE, then each registry setting whose flag was given."""
    cls = config_class()
    preset, path = getattr(args, "preset", None), getattr(args, "config", None)
    if preset and path:
        raise InputError("give --preset or --config, not both")
    base = cls.load(path) if path else (get_preset(preset).config if preset else cls())
    changes = {s.name: getattr(args, s.name) for s in registry()
               if s.flag is not None and getattr(args, s.name, None) is not None}
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
    fn_encoder = getattr(args, "fn_encoder", None)
    prep = prepare(triplets, encoder_from_args(args), config, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                   show_progress=not args.quiet,
                   fn_encoder=get_encoder(fn_encoder) if fn_encoder else None)
    return loaded, prep
