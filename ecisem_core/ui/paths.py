"""The data root: the only folder from which the dashboard reads a path the user types (no Streamlit import).

``ECISEM_DATA_ROOT`` names it; by default it is the project's ``data/`` folder (beside ``app.py``), not the
working directory, so starting the app from elsewhere never widens what it may read. A path is accepted only when
it resolves (symbolic links followed) to a location inside the root; anything else — an absolute path elsewhere,
``..`` segments, a link pointing out — is refused with an :class:`~ecisem_core.errors.InputError` that says so.
Files read *inside* an accepted folder are checked again when they are opened: the dashboard reads user data
within :func:`ecisem_core.confine.confined_to` (the data root), and every reader calls
:func:`ecisem_core.confine.checked`.
"""
from __future__ import annotations

import os
from pathlib import Path

from ecisem_core.confine import ROOT_ENV, checked_tree, inside
from ecisem_core.errors import InputError

DATA_ROOT_ENV = ROOT_ENV
"""Environment variable naming the data root."""
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = PROJECT_ROOT / "data"
"""The data root when ``ECISEM_DATA_ROOT`` is not set."""


def data_root() -> Path:
    """``$ECISEM_DATA_ROOT`` or the project's ``data/`` folder, resolved."""
    value = os.environ.get(DATA_ROOT_ENV)
    return (Path(value).expanduser() if value else DEFAULT_DATA_ROOT).resolve()


def ensure_data_root() -> Path:
    """The data root, with the project's default ``data/`` folder created when it is the root and missing (a
    fresh checkout has none); a root named by ``ECISEM_DATA_ROOT`` is never created (a typo should not make an
    empty folder that silently holds nothing)."""
    root = data_root()
    if DATA_ROOT_ENV not in os.environ and not root.exists():
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # a read-only checkout: the path input then says "nothing at …"
    return root


def resolve_under_root(user_path: str, root: Path | None = None, *, must_exist: bool = True) -> Path:
    """The absolute path of ``user_path`` (relative to the root, or absolute) if it lies inside the root
    (:func:`ecisem_core.confine.inside`, the same check every reader makes inside a confinement).

    Raises:
        InputError: empty, outside the data root, unresolvable, or (``must_exist``) not there.
    """
    root = (root or data_root()).resolve()
    text = (user_path or "").strip()
    if not text:
        raise InputError("no path given: type a file or folder under the data root")
    if "\0" in text:
        raise InputError("the path holds a NUL byte", repr(text))
    candidate = Path(text).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = inside(candidate, root, shown=text)
    try:
        there = resolved.exists()
    except OSError as exc:  # a name too long for the file system
        raise InputError(f"cannot look up the path ({exc.strerror or exc})", text) from None
    if must_exist and not there:
        raise InputError(f"nothing at {text!r} under the data root {root}")
    return resolved


def resolve_tree_under_root(user_path: str, root: Path | None = None) -> Path:
    """:func:`resolve_under_root`, and every file and folder under it also inside the root (for a path handed on
    to something that reads a whole folder: a background ``ecisem validate`` run, a model folder)."""
    root = (root or data_root()).resolve()
    return checked_tree(resolve_under_root(user_path, root), root)


def relative_to_root(path: Path, root: Path | None = None) -> str:
    """POSIX path of ``path`` relative to the root (what a share link carries)."""
    root = (root or data_root()).resolve()
    return Path(path).resolve().relative_to(root).as_posix()
