"""One output file, whole or absent: written to a temporary file beside the target and renamed into place (a
rename within one folder is atomic on POSIX), so a reader never sees half a file and a killed writer leaves the
previous file untouched. Output *folders* (``ecisem score --out``) are handled by
:mod:`ecisem_core.report.outputs`, which builds on this."""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from ecisem_core.errors import InputError

TMP_TAG = ".tmp-"
"""Marks a temporary file or folder being written (never a finished output)."""


def write_file_atomically(path: str | os.PathLike[str], write: Callable[[Path], None], what: str = "--out") -> Path:
    """Write one output file via a temporary file beside it and a rename (whole or absent); ``write(tmp)`` writes
    the content to the temporary path it is given. An OS error becomes an :class:`InputError` naming ``path``."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what} must be a file, but this is a folder", p)
    tmp = p.with_name(f".{p.name}{TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}{p.suffix}")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write the output ({exc.strerror or exc})", p) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def remove_quietly(*paths: Path) -> None:
    """Delete files that a cache no longer wants; one already gone, or that cannot be removed, is left as it is (the
    caches treat an entry they cannot use as absent, so a leftover file never changes a result)."""
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
