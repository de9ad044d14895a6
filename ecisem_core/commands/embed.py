"""``ecisem embed``: fill the embedding cache for DATA ahead of ``score`` — in this process, or on Ray with --ray."""
from __future__ import annotations

import argparse
import sys

from ecisem_core.commands.options import add_encoder_options, encoder_from_args
from ecisem_core.embed.distributed import ADDRESS_ENV, BATCH_SIZE, EncoderSpec, embed_with_ray
from ecisem_core.embed.texts import embed_triplets
from ecisem_core.errors import InputError
from ecisem_core.io.load import read_triplets

DESCRIPTION = f"""Embed every unique query, positive and negative text of DATA with the target encoder and store the
vectors in the embedding cache (--cache-dir), the cache that 'ecisem score', 'report' and 'flag' read: a later
run with the same encoder and cache then encodes nothing. Texts already in the cache are skipped.

Without --ray the texts are encoded in this process. With --ray they are encoded with Ray Data: map_batches over
encoder actors (one model per actor; one GPU per actor when the cluster has GPUs). --ray ADDRESS connects to that
cluster (e.g. ray://head:10001); --ray alone uses ${ADDRESS_ENV} when set, else starts a local Ray instance.
Every Ray node needs the project and the encoder installed. Exit codes: 0 ok, 2 bad input, 1 internal error."""


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("embed", help="fill the embedding cache for DATA (in-process, or on Ray with --ray)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="triplet files, in any format 'ecisem score' reads")
    add_encoder_options(p)
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help=f"embed on Ray: the cluster ADDRESS, else ${ADDRESS_ENV}, else a local instance "
                        "(default: no Ray, encode in this process)")
    p.add_argument("--actors", type=int, default=None, metavar="N",
                   help="encoder actors with --ray (default: one per GPU when the cluster has GPUs, else one per CPU)")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, metavar="N",
                   help="texts per actor call with --ray (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no load report and no progress")
    return p


def run(args: argparse.Namespace) -> int:
    if args.no_cache:
        raise InputError("'ecisem embed' only writes the embedding cache; --no-cache leaves it nothing to do")
    if args.ray is None and (args.actors is not None or args.batch_size != BATCH_SIZE):
        raise InputError("--actors and --batch-size apply to --ray only")
    if args.ray and ":" not in args.ray and args.ray not in ("auto", "local"):
        # `--ray FILE DATA...` would read FILE as the address: say so instead of failing to connect
        raise InputError(f"--ray {args.ray!r} is not a Ray address (ray://HOST:PORT, HOST:PORT, auto or local); "
                         "put --ray after the DATA files when giving no address")
    loaded = read_triplets(args.data)
    if not args.quiet:
        print(loaded.report.summary(), file=sys.stderr)
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    if args.ray is not None:
        spec = EncoderSpec(args.encoder, args.query_prompt, args.passage_prompt)
        report = embed_with_ray(loaded.triplets, spec, cache_dir=args.cache_dir, address=args.ray or None,
                                actors=args.actors, batch_size=args.batch_size, log=log)
        n_encoded, n_cached, model_id, seconds = report.n_encoded, report.n_cached, report.model_id, report.seconds
    else:
        encoder = encoder_from_args(args)
        if not encoder.cacheable:
            raise InputError(f"encoder {encoder.model_id!r} is not cached (it is fitted per dataset or read from a "
                             "file), so there is nothing to embed ahead")
        emb = embed_triplets(loaded.triplets, encoder, cache_dir=args.cache_dir, show_progress=not args.quiet)
        n_encoded, n_cached, model_id, seconds = emb.n_encoded, emb.n_cached, encoder.model_id, emb.encode_seconds
    if log is not None:
        log(f"embedded {n_encoded:,} texts with {model_id} ({n_cached:,} already cached) in {seconds:.1f} s")
    return 0
