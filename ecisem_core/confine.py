"""Read confinement: the one check that keeps every user-named file inside a root folder (the dashboard's data root).

A confinement is active inside ``with confined_to(root):`` (a context variable, so it holds for the thread and the
call tree that set it, not for other sessions). While it is active, every reader of user data calls
:func:`checked` on the path at the moment it opens it — a data file named inside a folder, the data files a
Hugging Face ``state.json`` lists, the files of a model folder — and the path is resolved (symbolic links
followed, ``..`` removed) and refused unless it lies inside the root. Outside a confinement (the CLI, the
library) :func:`checked` returns the path as it is: a command-line user may read whatever they can read.

Built-in files (the bundled demo, the default encoder's package, the embedding cache) are not user data and do
not pass through here.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from ecisem_core.errors import InputError

ROOT_ENV = "ECISEM_DATA_ROOT"
"""Environment variable naming the dashboard's data root (named in refusals)."""

_ROOT: ContextVar[Path | None] = ContextVar("ecisem_read_root", default=None)


def read_root() -> Path | None:
    """The root of the active confinement, or ``None`` when none is active."""
    return _ROOT.get()


@contextmanager
def confined_to(root: Path | str | None) -> Iterator[Path | None]:
    """Within the block, :func:`checked` refuses any path that resolves outside ``root`` (``None``: no check)."""
    resolved = Path(root).resolve() if root is not None else None
    token = _ROOT.set(resolved)
    try:
        yield resolved
    finally:
        _ROOT.reset(token)


def inside(path: Path | str, root: Path | str, shown: str | None = None) -> Path:
    """The resolved ``path`` if it lies inside ``root`` (both resolved, symbolic links followed).

    Raises:
        InputError: the path (or what a link in it points to) is outside the root, or cannot be resolved
            (a link loop, a NUL byte, a name too long).
    """
    root = Path(root).resolve()
    text = shown if shown is not None else str(path)
    try:
        resolved = Path(path).resolve(strict=False)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot resolve the path ({getattr(exc, 'strerror', None) or exc})", text) from None
    if resolved != root and not resolved.is_relative_to(root):
        raise InputError(f"refused: it resolves to a place outside the data root {root} "
                         f"(set {ROOT_ENV} to read from another folder)", text)
    return resolved


def checked(path: Path | str) -> Path:
    """``path`` checked against the active confinement (resolved and inside the root), or unchanged when none is
    active. Readers of user data call it just before they open a file."""
    root = _ROOT.get()
    return Path(path) if root is None else inside(path, root)


def checked_tree(folder: Path | str, root: Path | None = None) -> Path:
    """A folder and every file and folder under it checked against ``root`` (default: the active confinement),
    for readers that hand a whole folder to a library (a model folder given to sentence-transformers)."""
    root = root if root is not None else _ROOT.get()
    if root is None:
        return Path(folder)
    top = inside(folder, root)
    if top.is_dir():
        for entry in Path(folder).rglob("*"):
            inside(entry, root)
    return top
