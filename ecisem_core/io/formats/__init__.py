"""One reader per input format family: each turns one file into a raw frame with a ``__line__`` column.

:mod:`~ecisem_core.io.formats.json` (JSON Lines, JSON arrays, grouped Tevatron/FlagEmbedding records),
:mod:`~ecisem_core.io.formats.delimited` (CSV/TSV, headerless MS MARCO triples) and
:mod:`~ecisem_core.io.formats.arrow` (Parquet, Arrow IPC, ``save_to_disk`` folders).
"""
