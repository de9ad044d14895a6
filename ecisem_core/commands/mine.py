"""``ecisem mine``: candidate negative sources from (query, positive) pairs and a passage pool → one JSONL file
with a ``source`` column that ``score``, ``report``, ``flag`` and ``validate`` read as it is."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ecisem_core.io.corpus import read_corpus
from ecisem_core.downstream import mining
from ecisem_core.errors import InputError
from ecisem_core.io.evaldata import load_eval
from ecisem_core.io.load import read_triplets
from ecisem_core.commands.options import add_encoder_options, encoder_from_args

DESCRIPTION = f"""Mine negative sources for the (query, positive) pairs of PAIRS from a passage pool.

PAIRS: a BEIR folder (queries.jsonl, corpus.jsonl, qrels/), a TSV/CSV of query/passage pairs (columns such as
query_text, gold_passage) or any triplet file (its negatives are ignored). POOL: a BEIR folder or pairs file (its
passages), a text file (one passage a line) or JSONL with a "text" field; default: the corpus of PAIRS.

Strategies (--strategies, any number): {mining.STRATEGIES_HELP}.
  bm25, dense          the top k by BM25 (bm25s) or by cosine under --encoder
  bm25:10-50           k drawn at random from ranks 10..50 (likewise dense:LO-HI)
  dense-percpos[:0.95] TopK-PercPos (NV-Retriever): the top k with s_qn < 0.95 * s_qp
  random               k passages drawn uniformly
  bm25+dense           50/50 hybrid: half the queries take the first strategy's negatives, half the second's
The query's positive is never mined as its negative. Output columns: {", ".join(mining.COLUMNS)}.
Exit codes: 0 ok, 2 bad input, 1 internal error."""

DEFAULT_STRATEGIES = ("bm25", "dense", "dense:10-50", "dense-percpos", "random")


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    p = sub.add_parser("mine", help="mine negative sources from (query, positive) pairs and a pool",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", metavar="PAIRS", help="BEIR folder, pairs TSV/CSV, or a triplet file")
    p.add_argument("--pool", default=None, metavar="POOL", help="passage pool (default: the corpus of PAIRS)")
    p.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES), metavar="S",
                   help="strategies to mine, one source each (default: %(default)s)")
    p.add_argument("-k", "--negatives", type=int, default=mining.NEGATIVES_PER_QUERY, metavar="K",
                   help="negatives per query and strategy (default: %(default)s)")
    p.add_argument("--seed", type=int, default=mining.SEED, help="seed of the random draws (default: %(default)s)")
    add_encoder_options(p)
    p.add_argument("--out", default="mined.jsonl", metavar="FILE", help="output JSONL (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def read_pool(spec: str) -> list[str]:
    """Passages of a pool: a BEIR folder or pairs file (their corpus), else text/JSONL (:func:`read_corpus`)."""
    path = Path(spec)
    if path.is_dir() or path.suffix.lower() in (".tsv", ".csv"):
        return list(load_eval(path).corpus.values())
    return read_corpus(path)


def read_input(pairs: str, pool: str | None) -> mining.MiningInput:
    passages = read_pool(pool) if pool else None
    path = Path(pairs)
    if path.is_dir() or path.suffix.lower() in (".tsv", ".csv"):
        try:
            return mining.input_from_eval(load_eval(path), passages)
        except InputError:
            if path.is_dir():
                raise
    if passages is None:
        raise InputError("a triplet file as PAIRS needs --pool", path)
    return mining.input_from_triplets(read_triplets([pairs]).triplets, passages)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0 (got {args.seed})")
    strategies = [mining.parse_strategy(s) for s in args.strategies]
    data = read_input(args.pairs, args.pool)
    dense = None
    if any("dense" in s.rankers for s in strategies):
        dense = mining.dense_scorer(encoder_from_args(args), data.pool, cache_dir=args.cache_dir,
                                    use_cache=not args.no_cache, progress=not args.quiet)
    table = mining.mine(data, strategies, k=args.negatives, dense=dense, seed=args.seed, progress=not args.quiet)
    out = Path(args.out)
    if out.is_dir():
        raise InputError("--out is a folder; give a file name such as mined.jsonl", out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    table.to_json(tmp, orient="records", lines=True, force_ascii=False)
    os.replace(tmp, out)
    if not args.quiet:
        counts = table.groupby("source", sort=False).size()
        print(counts.to_string(), file=sys.stderr)
        print(f"wrote {len(table)} triplets of {len(counts)} sources for {len(set(data.query_ids))} queries "
              f"(pool {len(data.pool)}) to {out}", file=sys.stderr)
    return 0
