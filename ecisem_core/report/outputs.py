"""Outputs that are whole or absent: every file of a run is written into a temporary folder beside the target
(same parent, so a rename is one step), with a manifest ``run.json`` (inputs with sha256, settings, versions,
start and end time, files written with size and sha256), then moved into place at once. An existing target is
swapped atomically (Linux ``renameat2(RENAME_EXCHANGE)``) or, where that is unavailable, renamed aside first and
removed after; a folder left aside by a run killed between those two renames is put back by the next write or
read. :func:`read_manifest` tells a complete output from an incomplete one.

Single-file outputs (``ecisem report``, ``ecisem flag``, the annotation exports) use
:func:`ecisem_core.io.atomic.write_file_atomically` (temp file + rename).
"""
from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ecisem_core.errors import InputError
from ecisem_core.io.atomic import TMP_TAG

MANIFEST = "run.json"
"""The manifest written last into every output folder."""
OLD_TAG = ".old-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def versions() -> dict[str, str | None]:
    """Versions of ecisem, numpy and torch (from the installed metadata: torch is not imported)."""
    out: dict[str, str | None] = {}
    for dist, key in (("ecisem-explorer", "ecisem"), ("numpy", "numpy"), ("torch", "torch")):
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = None
    return out


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def input_entries(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """``{"path", "sha256", "size"}`` per input file; a folder gets one entry per file inside it."""
    out: list[dict[str, Any]] = []
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        for f in files:
            try:
                out.append({"path": str(f), "sha256": sha256_file(f), "size": f.stat().st_size})
            except OSError:
                out.append({"path": str(f), "sha256": None, "size": None})
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _siblings(target: Path, tag: str) -> list[Path]:
    parent = target.parent
    if not parent.is_dir():
        return []
    prefix = f".{target.name}{tag}"
    return sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink())


def recover(target: str | os.PathLike[str]) -> None:
    """Tidy what a killed run left beside ``target``: put back a folder renamed aside (when the target is
    missing) and remove temporary folders of processes that are gone."""
    target = Path(target).absolute()
    if not target.exists():
        old = _siblings(target, OLD_TAG)
        if old:
            os.rename(old[-1], target)
    for tmp in _siblings(target, TMP_TAG):
        pid = tmp.name.rsplit(TMP_TAG, 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
    if target.exists():
        for old in _siblings(target, OLD_TAG):
            shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 with RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_output_folder(out: str | os.PathLike[str], allowed: Sequence[str], what: str = "--out") -> Path:
    """The absolute output folder, after checking it can be replaced: not a file, and holding nothing but the
    files a run writes (an existing folder is replaced whole, so other files would be lost)."""
    target = Path(out).absolute()
    if target.exists() and not target.is_dir():
        raise InputError(f"{what} must be a folder, but this is a file", target)
    if target.is_dir():
        other = sorted(p.name for p in target.iterdir() if p.name not in set(allowed) | {MANIFEST})
        if other:
            raise InputError(f"{what} folder holds files that are not outputs of this command ({', '.join(other[:5])}"
                             f"{', …' if len(other) > 5 else ''}); it would be replaced whole: choose a new or empty "
                             "folder", target)
    return target


def write_outputs(out: str | os.PathLike[str], writers: Mapping[str, Callable[[Path], None]], *,
                  inputs: Sequence[str | os.PathLike[str]] = (), settings: Any = None,
                  started: str | None = None, command: str = "") -> Path:
    """Write a run's files whole or not at all: ``writers[name](path)`` writes one file into a temporary folder
    beside ``out``; then ``run.json`` is added and the folder moved into place. Returns the folder.

    Raises:
        InputError: ``out`` is a file, holds other files, or cannot be written (the message names it).
    """
    target = check_output_folder(out, list(writers))
    started = started or now()
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        tmp = parent / f".{target.name}{TMP_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as exc:
        raise InputError(f"cannot write the output folder ({exc.strerror or exc})", target) from None
    try:
        files = []
        for name, write in writers.items():
            path = tmp / name
            write(path)
            _fsync(path)
            files.append({"name": name, "size": path.stat().st_size, "sha256": sha256_file(path)})
        manifest = {"command": command, "inputs": input_entries(inputs), "settings": settings,
                    "versions": versions(), "started": started, "finished": now(), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
        _fsync(tmp / MANIFEST)
        _fsync(tmp)
        _move_into_place(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write the output folder ({exc.strerror or exc})", target) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync(parent)
    return target


def _move_into_place(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):      # tmp now holds the old run (or the symlink that was the target)
        if tmp.is_symlink():
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    aside = target.parent / f".{target.name}{OLD_TAG}{uuid.uuid4().hex[:8]}"
    os.rename(target, aside)
    os.rename(tmp, target)
    if aside.is_symlink():
        aside.unlink()
    else:
        shutil.rmtree(aside, ignore_errors=True)


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an output folder, with ``"complete"`` (bool) and ``"problems"`` (list of str): the output
    is incomplete when ``run.json`` is missing or unreadable, or a file it lists is missing or has another size or
    sha256."""
    folder = Path(folder)
    try:
        recover(folder)
    except OSError:
        pass
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
            raise ValueError("no list of files")
    except (OSError, ValueError) as exc:
        problem = "run.json is missing" if not path.exists() else f"run.json is unreadable ({exc})"
        return {"complete": False, "problems": [f"incomplete: {problem}"], "files": []}
    problems = []
    for entry in manifest["files"]:
        f = folder / str(entry.get("name", ""))
        if not f.is_file():
            problems.append(f"incomplete: {entry.get('name')} is missing")
        elif f.stat().st_size != entry.get("size") or sha256_file(f) != entry.get("sha256"):
            problems.append(f"incomplete: {entry.get('name')} does not match its sha256 in run.json")
    return {**manifest, "complete": not problems, "problems": problems}
