"""Saved named views: a page with its settings, filters and selection, kept under a name that a link can carry.

A view is the page's URL path and the query parameters its share link would have (the dataset, encoder, weights,
sources and the page's own parameters: the Explorer's search, filters, ranges and map selection, Compare's two
sides, …). A link ``…/?sv=<name>`` opens it: on a session's first run the saved parameters replace the link's and
the page it was saved on is shown (``app.py``). Pure functions and a small SQLite store (no Streamlit).

The store is one SQLite file, ``$ECISEM_VIEWS_DB`` or ``data/views/views.sqlite`` in the project (git-ignored).
Saving under a name that exists is refused unless ``replace=True``: nothing is overwritten by accident.
"""
from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd

from ecisem_core.errors import InputError

VIEWS_ENV = "ECISEM_VIEWS_DB"
"""Environment variable naming the saved-views store (an SQLite file; created on first use)."""
DEFAULT_VIEWS_DB = Path(__file__).resolve().parents[2] / "data" / "views" / "views.sqlite"
PARAM = "sv"
"""Query parameter naming a saved view."""
NAME_MAX = 80
"""Longest view name, in characters."""
_SCHEMA = """CREATE TABLE IF NOT EXISTS views (
    name TEXT PRIMARY KEY, page TEXT NOT NULL, params TEXT NOT NULL, created TEXT NOT NULL)"""


@dataclass(frozen=True)
class SavedView:
    """A page (its URL path, "" for the first page) and its query parameters (name → list of values)."""

    name: str
    page: str
    params: dict[str, list[str]]
    created: str


def check_name(name: object) -> str:
    """A view name, stripped: 1 to :data:`NAME_MAX` characters, no control characters; else ``InputError``."""
    text = str(name or "").strip()
    if not text:
        raise InputError("a saved view needs a name")
    if len(text) > NAME_MAX:
        raise InputError(f"a view name has at most {NAME_MAX} characters (this one has {len(text)})")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InputError("a view name cannot hold control characters (line breaks, tabs, …)")
    return text


def views_path() -> Path:
    """The store's file: ``$ECISEM_VIEWS_DB`` or :data:`DEFAULT_VIEWS_DB`."""
    env = os.environ.get(VIEWS_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else DEFAULT_VIEWS_DB


def as_lists(params: Mapping[str, str | Sequence[str]]) -> dict[str, list[str]]:
    """Query parameters with every value a list of strings (the saved-view parameter itself left out)."""
    return {str(k): ([v] if isinstance(v, str) else [str(x) for x in v]) for k, v in params.items() if k != PARAM}


class ViewStore:
    """The saved views in one SQLite file (one short connection per call; safe across the server's threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as conn:
            conn.execute(_SCHEMA)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            with conn:  # one transaction: committed on success, rolled back on an exception
                yield conn
        finally:
            conn.close()

    def save(self, name: str, page: str, params: Mapping[str, str | Sequence[str]], replace: bool = False
             ) -> SavedView:
        """Keep ``params`` of ``page`` under ``name``; an existing name is refused unless ``replace``."""
        name = check_name(name)
        view = SavedView(name, str(page), as_lists(params),
                         datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._conn() as conn:
            if not replace and conn.execute("SELECT 1 FROM views WHERE name = ?", (name,)).fetchone():
                raise InputError(f"a view named {name!r} exists already (replace it, or choose another name)")
            conn.execute("INSERT OR REPLACE INTO views (name, page, params, created) VALUES (?, ?, ?, ?)",
                         (name, view.page, json.dumps(view.params, sort_keys=True), view.created))
        return view

    def get(self, name: str) -> SavedView | None:
        """The view saved under ``name`` (None when there is none)."""
        with self._conn() as conn:
            row = conn.execute("SELECT name, page, params, created FROM views WHERE name = ?",
                               (str(name).strip(),)).fetchone()
        if row is None:
            return None
        return SavedView(row[0], row[1], as_lists(json.loads(row[2])), row[3])

    def names(self) -> pd.DataFrame:
        """Every saved view: name, page, created (newest first)."""
        with self._conn() as conn:
            rows = conn.execute("SELECT name, page, created FROM views ORDER BY created DESC, name").fetchall()
        return pd.DataFrame(rows, columns=["name", "page", "created"])

    def delete(self, name: str) -> bool:
        """Remove a saved view; True when there was one."""
        with self._conn() as conn:
            return conn.execute("DELETE FROM views WHERE name = ?", (str(name).strip(),)).rowcount > 0


def view_link(base: str, view: SavedView) -> str:
    """The link that opens a saved view: ``<app root>/<page>?sv=<name>``.

    >>> view_link("http://h:8501", SavedView("bm25 vs llm", "compare", {}, ""))
    'http://h:8501/compare?sv=bm25+vs+llm'
    """
    page = f"/{view.page}" if view.page else "/"
    return f"{base.rstrip('/')}{page}?{urlencode({PARAM: view.name})}"
