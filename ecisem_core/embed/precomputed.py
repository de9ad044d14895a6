"""Precomputed embeddings (e.g. computed on a GPU elsewhere), keyed by text hash.

    hashes, matrix = read_embeddings("vectors.npz")      # list of sha1 hex keys, float32 (n × d)
    write_embeddings("vectors.parquet", text_hashes(texts), matrix)

Keys are ``hashing.text_hash(text)`` = sha1 hex of the UTF-8 text, exactly as given. Formats:

* ``.npz`` with arrays ``embedding`` (n × d numbers) and ``text_hash`` (n strings) or ``text`` (hashed here);
* Parquet with columns ``embedding`` (list<float> or fixed-size list, all of length d) and ``text_hash`` or ``text``;
* ``.npy`` (n × d) with a sidecar in the same folder: ``<stem>.keys.txt`` (one hash per line) or
  ``<stem>.texts.jsonl`` (one JSON string per line, hashed here).

User files are never unpickled: NumPy files are opened with ``allow_pickle=False`` and one holding Python
objects raises :class:`~ecisem_core.errors.InputError`. Every other problem (ragged or non-numeric vectors,
NaN/inf, all-zero rows, key count ≠ row count, malformed keys) raises ``InputError`` naming the file and the row (1-based).
"""
from __future__ import annotations

import io
import json
import os
import pickletools
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ecisem_core.confine import checked
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes

PICKLE_PROBLEM = "contains Python objects (pickle); refusing to load"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read precomputed embeddings: (text hashes, float32 matrix n × d), row i belonging to hash i.

    Duplicate hashes are returned as they are (row order kept).

    Raises:
        InputError: unreadable/unknown file, pickled content, missing array/column, ragged or non-numeric
            vectors, NaN/inf, key count ≠ number of rows, malformed hash.

    Example:
        >>> hashes, m = read_embeddings("vectors.npz")    # doctest: +SKIP
        >>> m.dtype, m.shape                              # doctest: +SKIP
        (dtype('float32'), (1000, 384))
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "not a file", p)
    ext = p.suffix.lower()
    if ext == ".npz":
        hashes, matrix = _read_npz(p)
    elif ext in (".parquet", ".pq"):
        hashes, matrix = _read_parquet(p)
    elif ext == ".npy":
        hashes, matrix = _read_npy(p)
    else:
        raise InputError(f"unknown embeddings format {ext or '(no extension)'!r}; use .npz, .parquet or .npy "
                         "(+ .keys.txt / .texts.jsonl sidecar)", p)
    matrix = _check_matrix(matrix, p, len(hashes))
    zero = np.flatnonzero(~matrix.any(axis=1))
    if zero.size:
        raise InputError(f"{zero.size} of {len(matrix)} embeddings are all zeros (a zero vector has no direction; "
                         "cosine similarity is undefined)", p, int(zero[0]) + 1)
    return hashes, matrix


def write_embeddings(path: str | os.PathLike[str], hashes: Sequence[str], matrix: np.ndarray) -> Path:
    """Write embeddings in a format :func:`read_embeddings` reads: ``.npz``, ``.parquet`` or ``.npy``
    (+ ``<stem>.keys.txt``). The matrix is stored as float32. Returns the path written.

    Raises:
        InputError: unknown extension, hashes not 40-hex sha1, key count ≠ rows, non-2-D or non-finite matrix.
    """
    p = Path(path)
    keys = _check_hashes([str(h) for h in hashes], p)
    m = _check_matrix(np.asarray(matrix), p, len(keys))
    ext = p.suffix.lower()
    if ext == ".npz":
        with open(p, "wb") as fh:  # a file object keeps np.savez from appending ".npz"
            np.savez(fh, text_hash=np.asarray(keys, dtype="U40"), embedding=m)
    elif ext in (".parquet", ".pq"):
        d = m.shape[1]
        offsets = pa.array(np.arange(0, (len(keys) + 1) * d, d, dtype=np.int32))
        emb = pa.ListArray.from_arrays(offsets, pa.array(m.reshape(-1), type=pa.float32()))
        pq.write_table(pa.table({"text_hash": pa.array(keys, pa.string()), "embedding": emb}), p)
    elif ext == ".npy":
        with open(p, "wb") as fh:
            np.save(fh, m, allow_pickle=False)
        p.with_suffix(".keys.txt").write_text("".join(k + "\n" for k in keys), encoding="utf-8")
    else:
        raise InputError(f"unknown embeddings format {ext or '(no extension)'!r}; use .npz, .parquet or .npy", p)
    return p


# ----------------------------------------------------------------------------------------------- numpy


def _magic(p: Path, n: int = 8) -> bytes:
    try:
        with open(checked(p), "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", p) from None


def _looks_like_pickle(p: Path) -> bool:
    """True when the first bytes disassemble as pickle opcodes (``pickletools`` only reads opcodes; nothing is
    constructed or imported)."""
    size = 65536
    head = _magic(p, size)
    last = 0
    try:
        for op, _arg, pos in pickletools.genops(io.BytesIO(head)):
            last = pos or 0
            if op.name == "STOP":
                return True
    except Exception:  # noqa: BLE001 - a parse failure: a pickle only if it ran out of bytes (big pickle)
        return len(head) == size and last > size - 4096
    return False


def _numpy_error(exc: Exception, p: Path, what: str) -> InputError:
    msg = str(exc)
    if "pickle" in msg.lower() or "object arrays" in msg.lower():
        return InputError(PICKLE_PROBLEM, p)
    return InputError(f"not a readable {what} file ({msg})", p)


def _read_npy_array(p: Path) -> np.ndarray:
    head = _magic(p)
    if not head:
        raise InputError("file is empty", p)
    if not head.startswith(_NPY_MAGIC):
        if _looks_like_pickle(p):
            raise InputError(PICKLE_PROBLEM, p)
        raise InputError("not a NumPy .npy file (the \\x93NUMPY magic bytes are missing)", p)
    try:
        return np.load(checked(p), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _numpy_error(exc, p, ".npy") from None


def _read_npz(p: Path) -> tuple[list[str], np.ndarray]:
    head = _magic(p)
    if not head:
        raise InputError("file is empty", p)
    if not head.startswith(_ZIP_MAGIC):
        if head.startswith(_NPY_MAGIC):
            raise InputError("this is a single .npy array, not a .npz archive; rename it to .npy and add "
                             "a .keys.txt sidecar", p)
        if _looks_like_pickle(p):
            raise InputError(PICKLE_PROBLEM, p)
        raise InputError("not a NumPy .npz archive", p)
    try:
        with np.load(checked(p), allow_pickle=False) as z:
            names = set(z.files)
            if "embedding" not in names:
                raise InputError(f"missing array 'embedding'; found {sorted(names)}", p)
            key = "text_hash" if "text_hash" in names else "text" if "text" in names else None
            if key is None:
                raise InputError(f"missing array 'text_hash' (or 'text'); found {sorted(names)}", p)
            matrix = z["embedding"]
            keys = z[key]
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _numpy_error(exc, p, ".npz") from None
    for name, arr in (("embedding", matrix), (key, keys)):
        if not isinstance(arr, np.ndarray):
            raise InputError(f"member {name!r} of the archive is not a NumPy array", p)
    if keys.ndim != 1:
        raise InputError(f"array {key!r} must be 1-D (one entry per row), got shape {keys.shape}", p)
    if keys.dtype.kind == "S":
        keys = np.char.decode(keys, "utf-8")
    if keys.dtype.kind != "U":
        raise InputError(f"array {key!r} must hold strings, got dtype {keys.dtype}", p)
    values = keys.tolist()
    hashes = text_hashes(values) if key == "text" else _check_hashes(values, p)
    return hashes, matrix


def _read_npy(p: Path) -> tuple[list[str], np.ndarray]:
    matrix = _read_npy_array(p)
    keys_file = p.with_suffix(".keys.txt")
    texts_file = p.with_suffix(".texts.jsonl")
    if keys_file.is_file():
        hashes = _check_hashes(_sidecar_lines(keys_file), keys_file)
        side = keys_file
    elif texts_file.is_file():
        hashes = text_hashes(_sidecar_texts(texts_file))
        side = texts_file
    else:
        raise InputError(f"a .npy matrix needs a sidecar with its keys: {keys_file.name} (one text hash per "
                         f"line) or {texts_file.name} (one JSON string per line)", p)
    n = matrix.shape[0] if matrix.ndim >= 1 else 0
    if len(hashes) != n:
        raise InputError(f"{side.name} has {len(hashes)} keys but the matrix has {n} rows", p)
    return hashes, matrix


def _sidecar_lines(p: Path) -> list[str]:
    """Lines of a UTF-8 sidecar (BOM and CRLF accepted); one trailing newline allowed, no blank lines."""
    try:
        text = checked(p).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", p) from None
    except UnicodeDecodeError as exc:
        raise InputError("not valid UTF-8 text", p, p.read_bytes().count(b"\n", 0, exc.start) + 1) from None
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            raise InputError("blank line (one key per line expected)", p, i)
    return lines


def _sidecar_texts(p: Path) -> list[str]:
    out = []
    for i, line in enumerate(_sidecar_lines(p), 1):
        try:
            v = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON ({exc.msg})", p, i) from None
        if not isinstance(v, str):
            raise InputError(f"expected a JSON string, got {type(v).__name__}", p, i)
        out.append(v)
    return out


# ---------------------------------------------------------------------------------------------- parquet


def _read_parquet(p: Path) -> tuple[list[str], np.ndarray]:
    if _magic(p, 4) != b"PAR1":
        raise InputError("not a Parquet file (the PAR1 magic bytes are missing)", p)
    try:
        table = pq.read_table(checked(p))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read Parquet ({exc})", p) from None
    names = table.column_names
    if "embedding" not in names:
        raise InputError(f"missing column 'embedding'; found {names}", p)
    key = "text_hash" if "text_hash" in names else "text" if "text" in names else None
    if key is None:
        raise InputError(f"missing column 'text_hash' (or 'text'); found {names}", p)
    keys = table.column(key).combine_chunks()
    if not (pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type)):
        raise InputError(f"column {key!r} must hold strings, got {keys.type}", p)
    if keys.null_count:
        raise InputError(f"column {key!r} is empty", p, _first_true(keys.is_null()) + 1)
    values = keys.to_pylist()
    hashes = text_hashes(values) if key == "text" else _check_hashes(values, p)
    return hashes, _list_column_matrix(table.column("embedding").combine_chunks(), p)


def _first_true(mask: pa.Array | np.ndarray) -> int:
    arr = mask.to_numpy(zero_copy_only=False) if isinstance(mask, pa.Array) else mask
    return int(np.flatnonzero(arr)[0])


def _list_column_matrix(col: pa.Array, p: Path) -> np.ndarray:
    """list<number> / fixed_size_list<number> column → n × d matrix, rejecting ragged and null vectors."""
    t = col.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        raise InputError(f"column 'embedding' must be a list of numbers per row, got {t}", p)
    vt = t.value_type
    if not (pa.types.is_floating(vt) or pa.types.is_integer(vt)):
        raise InputError(f"column 'embedding' holds non-numeric values ({vt})", p)
    n = len(col)
    if n == 0:
        raise InputError("no embeddings (0 rows)", p)
    if col.null_count:
        raise InputError("embedding is missing (null)", p, _first_true(col.is_null()) + 1)
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
    d = int(lengths[0])
    ragged = np.flatnonzero(lengths != d)
    if len(ragged):
        i = int(ragged[0])
        raise InputError(f"ragged embeddings: row {i + 1} has {int(lengths[i])} values but row 1 has {d}", p, i + 1)
    values = col.flatten()
    if values.null_count:
        row = _first_true(values.is_null()) // max(d, 1)
        raise InputError("embedding contains a null value", p, row + 1)
    return values.to_numpy(zero_copy_only=False).reshape(n, d)


# ------------------------------------------------------------------------------------------------ checks


def _check_hashes(values: list[str], p: Path) -> list[str]:
    """Lower-cased 40-hex sha1 keys; the first malformed one raises with its row."""
    out = [v.strip().lower() for v in values]
    arr = np.asarray(out, dtype="U") if out else np.asarray([], dtype="U40")
    ok = np.char.str_len(arr) == 40
    if ok.any():
        ok &= np.char.strip(arr, "0123456789abcdef") == ""
    bad = np.flatnonzero(~ok)
    if len(bad):
        i = int(bad[0])
        raise InputError(f"key {values[i]!r} is not a text hash (40 hex characters of sha1); use "
                         "hashing.text_hash(text) or give the texts instead", p, i + 1)
    return out


def _check_matrix(matrix: np.ndarray, p: Path, n_keys: int) -> np.ndarray:
    """n × d finite numbers → float32; names the first bad row (1-based)."""
    m = np.asarray(matrix)
    if m.dtype.hasobject:
        raise InputError(PICKLE_PROBLEM, p)
    if m.dtype.kind not in "iuf":
        raise InputError(f"embeddings must be numbers, got dtype {m.dtype}", p)
    if m.ndim != 2:
        raise InputError(f"embeddings must be a 2-D matrix (rows × dimensions), got shape {m.shape}", p)
    if m.shape[0] == 0 or m.shape[1] == 0:
        raise InputError(f"no embeddings (shape {m.shape})", p)
    if m.shape[0] != n_keys:
        raise InputError(f"{n_keys} keys but {m.shape[0]} embedding rows", p)
    m = m.astype(np.float32, copy=False)
    finite = np.isfinite(m).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise InputError("embedding contains NaN or inf (or a value too large for float32)", p, i + 1)
    return np.ascontiguousarray(m)
