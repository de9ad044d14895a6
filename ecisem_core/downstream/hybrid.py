"""Hybrid sources: mixtures of the triplets of existing sources (e.g. "bm25+dense")."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.hashing import content_key

HYBRID_SEP = "+"
"""Separator of part names in a hybrid's default name."""


def make_hybrid(triplets: pd.DataFrame, parts: Sequence[str], name: str | None = None, *, equal: bool = True,
                seed: int = 0) -> pd.DataFrame:
    """Rows of a hybrid source built from ``parts`` (returned alone; concatenate them to the table yourself).

    ``equal=True`` takes the same number of triplets from each part (the smallest part's size, chosen by a
    seeded content hash, so the choice does not depend on row order): a 50/50 mixture of two parts.
    ``equal=False`` takes every triplet of every part.
    """
    if len(parts) < 2:
        raise InputError(f"a hybrid needs at least two sources (got {list(parts)})")
    repeated = sorted({p for p in parts if list(parts).count(p) > 1})
    if repeated:
        raise InputError(f"a hybrid needs distinct sources; {HYBRID_SEP.join(parts)!r} repeats {repeated} (a source "
                         "mixed with itself is the source again, under another name)")
    known = set(triplets["source"].unique())
    missing = [p for p in parts if p not in known]
    if missing:
        raise InputError(f"unknown source(s) {missing} for a hybrid; known: {sorted(known)}")
    chunks = [triplets[triplets["source"] == p] for p in parts]
    if equal:
        k = min(len(c) for c in chunks)
        chunks = [c.iloc[np.argsort(content_key(c, seed), kind="stable")[:k]] for c in chunks]
    out = pd.concat(chunks, ignore_index=True)
    out["source"] = name or HYBRID_SEP.join(parts)
    return out


def add_hybrids(triplets: pd.DataFrame, specs: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """The table with hybrids appended; each spec is ``"a+b[+c]"`` (equal shares)."""
    extra = [make_hybrid(triplets, [p.strip() for p in spec.split(HYBRID_SEP)], seed=seed) for spec in specs]
    return pd.concat([triplets, *extra], ignore_index=True) if extra else triplets
