"""JSON inputs → raw frames: JSON Lines (one object per line, incl. grouped Tevatron / FlagEmbedding records,
expanded later by :mod:`ecisem_core.io.schema`) or a JSON array of objects."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.errors import InputError
from ecisem_core.io.jsonl import loads_checked
from ecisem_core.io.schema import LINE_COLUMN


def read_json(text: str, p: Path, kind: str) -> tuple[pd.DataFrame, str]:
    """JSON Lines (one object per line; blank lines skipped) or a JSON array of objects."""
    if text.lstrip().startswith("["):
        data = loads_checked(text, p, None)
        bad = next((i for i, r in enumerate(data) if not isinstance(r, dict)), None)
        if bad is not None:
            raise InputError(f"JSON array item {bad + 1} is not an object", p)
        if not data:
            raise InputError("file is empty (an empty JSON array)", p)
        df = pd.DataFrame.from_records(data)
        df[LINE_COLUMN] = np.arange(1, len(df) + 1, dtype=np.int64)  # record number
        return df, "json"
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for i, raw in enumerate(text.split("\n"), 1):
        s = raw.strip()
        if not s:
            continue
        obj = loads_checked(s, p, i)
        if not isinstance(obj, dict):
            raise InputError(f"expected one JSON object per line, got {type(obj).__name__}", p, i)
        records.append(obj)
        lines.append(i)
    df = pd.DataFrame.from_records(records)
    df[LINE_COLUMN] = np.asarray(lines, dtype=np.int64)
    return df, "jsonl"
