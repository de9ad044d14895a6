"""Content fingerprint of a local model folder: part of its embedding-cache key, so a model changed at the same
path is encoded again instead of reusing its predecessor's vectors.

The fingerprint hashes every small file (configs, tokenizer, modules.json …) in full, and every weight file by its
sha256, computed on first use and remembered by (path, size, mtime) in memory and in
``<cache root>/file_hashes.json``: later runs cost one ``stat`` per weight file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from ecisem_core.embed.cache import default_cache_root
from ecisem_core.errors import InputError
from ecisem_core.hashing import file_sha256 as _sha256

WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt", ".gguf",
                             ".ot", ".model"})
"""Large files hashed once and remembered by (path, size, mtime); every other file is hashed each time."""
SMALL_LIMIT = 4 << 20
"""A file above this size is treated as a weight file whatever its suffix."""
MEMO_FILE = "file_hashes.json"
MODEL_MARKERS = ("modules.json", "config_sentence_transformers.json", "config.json")
"""A folder holding none of these is not a (sentence-)transformers model."""

_memo: dict[str, str] = {}


def _memo_path(root: Path | None) -> Path:
    return Path(root or default_cache_root()) / MEMO_FILE


def _load_memo(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_memo(path: Path, memo: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(json.dumps(memo, indent=0, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # a memo that cannot be written only costs a re-hash next time


def weight_hash(path: Path, memo_root: Path | None = None) -> str:
    """sha256 of a (large) file, remembered by (resolved path, size, mtime)."""
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key in _memo:
        return _memo[key]
    memo_file = _memo_path(memo_root)
    disk = _load_memo(memo_file)
    if key not in disk:
        disk[key] = _sha256(path)
        _save_memo(memo_file, disk)
    _memo[key] = disk[key]
    return disk[key]


def is_model_folder(folder: Path) -> bool:
    return any((folder / m).is_file() for m in MODEL_MARKERS)


HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?")
"""A Hugging Face model id, ``name`` or ``org/name`` (letters, digits, ``_ . -``; no path separators beyond one
``/``, no ``..``): what the dashboard's "Model name" field accepts."""


def is_hub_name(text: str) -> bool:
    """True for a Hugging Face model id (:data:`HUB_NAME`) that cannot be read as a path elsewhere."""
    return bool(HUB_NAME.fullmatch(text or "")) and ".." not in text


def check_model_spec(spec: str, what: str = "--encoder") -> None:
    """``InputError`` when ``spec`` names an existing folder that holds no model (a name or a model folder
    passes)."""
    folder = Path(spec)
    if folder.is_dir() and not is_model_folder(folder):
        raise InputError(f"{what}: not a sentence-transformers model folder (no modules.json or config.json in it)",
                         folder)


def model_fingerprint(folder: str | os.PathLike[str], memo_root: Path | None = None) -> str:
    """16 hex characters that change whenever a file of the model folder changes (content of small files,
    sha256 of weight files)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue  # .git, .cache and similar
        size = f.stat().st_size
        digest = weight_hash(f, memo_root) if f.suffix in WEIGHT_SUFFIXES or size > SMALL_LIMIT else _sha256(f)
        h.update(f"{rel}\0{digest}\n".encode("utf-8"))
    return h.hexdigest()[:16]
