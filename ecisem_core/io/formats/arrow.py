"""Arrow-based inputs → raw frames: Parquet, Arrow IPC files/streams and Hugging Face ``save_to_disk`` folders
(read with pyarrow; the ``datasets`` package is not needed)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ecisem_core.confine import checked
from ecisem_core.errors import InputError
from ecisem_core.io.decode import read_head
from ecisem_core.io.schema import LINE_COLUMN


def frame_from_table(table: pa.Table) -> pd.DataFrame:
    """An Arrow table → raw frame; the record number (1-based) is the line."""
    df = table.to_pandas()
    if not isinstance(df.index, pd.RangeIndex):
        df = df.reset_index()  # an index written by pandas (e.g. query_id) becomes a column again
    df.index = pd.RangeIndex(len(df))
    df[LINE_COLUMN] = np.arange(1, len(df) + 1, dtype=np.int64)
    return df


def read_parquet_table(p: Path) -> pa.Table:
    """A Parquet file, checked for its magic bytes first."""
    head = read_head(p, False, 4)
    if not head:
        raise InputError("file is empty", p)
    if head != b"PAR1":
        raise InputError("not a Parquet file (the PAR1 magic bytes are missing)", p)
    try:
        return pq.read_table(checked(p))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet ({exc})", p) from None


def read_arrow_file(p: Path) -> pa.Table:
    """An Arrow IPC stream (what ``datasets`` writes) or an Arrow IPC/Feather v2 file."""
    if not read_head(p, False, 1):
        raise InputError("file is empty", p)
    try:
        with pa.memory_map(str(checked(p))) as src:
            return pa.ipc.open_stream(src).read_all()
    except (pa.ArrowException, OSError):
        pass
    try:
        with pa.memory_map(str(checked(p))) as src:
            return pa.ipc.open_file(src).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not an Arrow IPC file or stream ({exc})", p) from None


def is_saved_dataset(p: Path) -> bool:
    """True when folder ``p`` looks like a ``save_to_disk`` dataset (or ``DatasetDict``) folder."""
    return (p / "state.json").is_file() or (p / "dataset_dict.json").is_file() or any(p.glob("*.arrow"))


def dataset_dict_splits(p: Path) -> list[Path]:
    """The split folders of a ``DatasetDict`` folder, in the order of its ``dataset_dict.json``."""
    try:
        splits = json.loads(checked(p / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable dataset_dict.json ({exc})", p / "dataset_dict.json") from None
    out = [p / str(s) for s in splits]
    for s in out:
        if not s.is_dir():
            raise InputError("split folder listed in dataset_dict.json is missing", s)
    return out


def read_saved_dataset(p: Path) -> pa.Table:
    """The Arrow shards of a ``Dataset.save_to_disk`` folder, in the order of ``state.json``."""
    state = p / "state.json"
    if state.is_file():
        try:
            names = [d["filename"] for d in json.loads(checked(state).read_text(encoding="utf-8"))["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"unreadable state.json ({exc})", state) from None
        files = [p / n for n in names]
        for f in files:
            checked(f)  # a name holding ../ (or a link) must not lead out of a confinement
    else:
        files = sorted(p.glob("*.arrow"))
    if not files:
        raise InputError("saved dataset has no .arrow data files", p)
    for f in files:
        if not f.is_file():
            raise InputError("data file listed in state.json is missing", f)
    tables = [read_arrow_file(f) for f in files]
    try:
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    except pa.ArrowException as exc:
        raise InputError(f"shards have different columns ({exc})", p) from None
