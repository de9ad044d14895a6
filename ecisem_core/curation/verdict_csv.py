"""Verdicts from a CSV file (the False negatives page's import, :func:`ecisem_core.curation.review.import_verdicts`):
every row checked, the first bad one named by file and line, nothing half-read."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from ecisem_core.curation.verdicts import normalise_verdict
from ecisem_core.errors import InputError

VERDICT_CSV_COLUMNS: tuple[str, ...] = ("item_id", "query_id", "negative_id", "verdict", "annotator", "comment")
"""Columns read by :func:`read_verdicts_csv` (``item_id`` or ``query_id`` + ``negative_id`` name the item)."""


def read_verdicts_csv(path: str | Path, default_annotator: str | None = None) -> pd.DataFrame:
    """Read verdicts from a CSV file with a header row.

    Columns: ``verdict`` (false_negative / true_negative / unsure, or fn / tn), ``annotator`` (or
    ``default_annotator``), optional ``comment``, and ``item_id`` or ``query_id`` + ``negative_id``. Every row is
    checked; the first bad one raises ``InputError`` naming the file and its line. Returns the columns of
    :data:`VERDICT_CSV_COLUMNS` plus ``file`` and ``line`` (for :meth:`AnnotationStore.record_verdicts`).
    """
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read verdicts ({exc.strerror})", path) from None
    rows = []
    with fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader, [])]
        except csv.Error as exc:
            raise InputError(f"not a CSV file ({exc})", path, 1) from None
        if "verdict" not in header:
            raise InputError(f"no 'verdict' column (columns: {header})", path, 1)
        if "item_id" not in header and not {"query_id", "negative_id"} <= set(header):
            raise InputError("name the item with an 'item_id' column or 'query_id' and 'negative_id' columns", path, 1)
        if "annotator" not in header and not default_annotator:
            raise InputError("no 'annotator' column and no default annotator given", path, 1)
        while True:
            line = reader.line_num + 1  # where the next record starts
            try:
                raw = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError(f"malformed CSV ({exc})", path, line) from None
            if not any(v.strip() for v in raw):
                continue  # blank line
            if len(raw) > len(header):
                raise InputError(f"more fields ({len(raw)}) than header columns ({len(header)})", path, line)
            rec = {k: v.strip() for k, v in zip(header, raw) if k}
            try:
                verdict = normalise_verdict(rec.get("verdict", ""))
            except InputError as exc:
                raise InputError(exc.problem, path, line) from None
            annotator = rec.get("annotator") or (default_annotator or "")
            if not annotator:
                raise InputError("empty annotator", path, line)
            item = rec.get("item_id", "")
            if item:
                try:
                    item_val: int | None = int(item)
                except ValueError:
                    raise InputError(f"item_id {item!r} is not an integer", path, line) from None
            else:
                item_val = None
                if not rec.get("query_id") or not rec.get("negative_id"):
                    raise InputError("row names no item (empty item_id, query_id or negative_id)", path, line)
            rows.append(
                {
                    "item_id": item_val,
                    "query_id": rec.get("query_id") or None,
                    "negative_id": rec.get("negative_id") or None,
                    "verdict": verdict,
                    "annotator": annotator,
                    "comment": rec.get("comment", ""),
                    "file": str(path),
                    "line": line,
                }
            )
    frame = pd.DataFrame(rows, columns=[*VERDICT_CSV_COLUMNS, "file", "line"])
    frame["item_id"] = frame["item_id"].astype("Int64")
    return frame
