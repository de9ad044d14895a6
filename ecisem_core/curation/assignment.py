"""Who judges which item: a batch's items dealt to annotators with a chosen overlap for agreement.

A share ``overlap`` of the items (chosen by a seeded permutation) is *shared*: each of them goes to
``per_shared`` annotators, so Cohen's κ can be measured on them; every other item goes to one annotator. Items are
dealt greedily to the least-loaded annotators (ties broken by the annotators' order), so the loads differ by at
most one item of each kind. This is the usual design of annotation campaigns with a calibration subset — Argilla's
"minimum submitted responses" per record, Label Studio's "overlap" share of tasks.

    >>> assign_items(range(10), ["alice", "bob"], overlap=0.2).groupby("annotator").size().to_dict()
    {'alice': 6, 'bob': 6}

With ``A`` annotators, ``n`` items, ``s = round(overlap·n)`` shared items and ``k = min(per_shared, A)``, the
annotators answer ``s·k + (n − s)`` items in all, each between ⌊that / A⌋ and ⌈that / A⌉ + 1.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ecisem_core.curation.verdicts import check_annotator
from ecisem_core.errors import InputError

PER_SHARED_DEFAULT: int = 2
"""Annotators per shared item (2 is enough for Cohen's κ)."""
OVERLAP_DEFAULT: float = 0.2
"""Share of items judged by several annotators."""


def annotator_names(names: Iterable[object]) -> list[str]:
    """Stripped, non-empty, distinct names in their order; ``InputError`` on an empty list or a repeated name."""
    out: list[str] = []
    for raw in names:
        if raw is None or not str(raw).strip():
            continue
        name = check_annotator(raw)
        if name in out:
            raise InputError(f"annotator {name!r} is named twice")
        out.append(name)
    if not out:
        raise InputError("name at least one annotator")
    return out


def shared_count(n_items: int, overlap: float) -> int:
    """How many of ``n_items`` are shared: ``round(overlap · n_items)`` (half up)."""
    if not 0.0 <= float(overlap) <= 1.0:
        raise InputError(f"overlap must be between 0 and 1, got {overlap!r}")
    return int(np.floor(float(overlap) * n_items + 0.5))


def assign_items(item_ids: Iterable[int], annotators: Sequence[str], overlap: float = OVERLAP_DEFAULT,
                 per_shared: int = PER_SHARED_DEFAULT, seed: int = 0) -> pd.DataFrame:
    """Rows (item_id, annotator, shared): every item once per annotator it is dealt to. Deterministic given
    ``seed``; one annotator gets every item."""
    names = annotator_names(annotators)
    items = [int(i) for i in item_ids]
    if len(set(items)) != len(items):
        raise InputError("an item id is listed twice")
    if int(per_shared) < 1:
        raise InputError(f"annotators per shared item must be at least 1, got {per_shared!r}")
    k = min(int(per_shared), len(names))
    n_shared = shared_count(len(items), overlap)
    order = np.random.default_rng(seed).permutation(len(items))
    shared = set(order[:n_shared].tolist()) if k > 1 else set()
    load = np.zeros(len(names), dtype=np.int64)
    rows: list[tuple[int, str, bool]] = []
    for pos in range(len(items)):  # in item order, so an annotator's items keep the batch's order
        want = k if pos in shared else 1
        chosen = np.argsort(load, kind="stable")[:want]
        load[chosen] += 1
        rows += [(items[pos], names[j], pos in shared) for j in sorted(chosen)]
    return pd.DataFrame(rows, columns=["item_id", "annotator", "shared"])


def load_table(assignments: pd.DataFrame) -> pd.DataFrame:
    """Per annotator: items dealt, of which shared (columns annotator, items, shared)."""
    if assignments.empty:
        return pd.DataFrame(columns=["annotator", "items", "shared"])
    g = assignments.groupby("annotator", sort=False)
    return pd.DataFrame({"items": g.size(), "shared": g["shared"].sum().astype(int)}).reset_index()
