"""SQLite store of annotation batches, items and verdicts (what the verdicts say — consensus, agreement, flagger
precision — is computed by :mod:`ecisem_core.curation.verdicts`; the store's methods hand it their verdicts).

Durability design (verdicts are never lost):

* WAL journal (``PRAGMA journal_mode=WAL``): readers never block the writer and a crash leaves the database file
  untouched — uncommitted frames at the end of the WAL are ignored on recovery.
* Every write is one ``BEGIN IMMEDIATE … COMMIT`` transaction, so a writer takes the write lock *before* reading
  (no deadlock-prone lock upgrade), and waits for other writers up to :data:`BUSY_TIMEOUT_S` (busy timeout)
  instead of failing.
* ``PRAGMA synchronous=FULL``: a commit is on disk when ``record_verdict`` returns.
* Verdicts are append-only: a new answer by the same annotator on the same item is a new row; the *current*
  verdict is the latest one (highest id) per (item, annotator), the older ones stay as history.
* One short-lived connection per operation: safe across threads (the dashboard), processes (several annotators)
  and restarts; the store object holds only the path.

Tables: ``batches(id, name, created, settings)`` (settings: JSON), ``items(id, batch_id, position, query_id,
negative_id, query, positive, negative, source, fn_score, fn_flag, fn_reasons)``, ``verdicts(id, item_id,
annotator, verdict, comment, created)``, ``assignments(item_id, annotator, shared)`` (who judges which item;
a batch without rows here is open to every annotator) and ``guidelines(batch_id, text, updated)`` (the
researcher's instructions shown to the batch's annotators). Times are UTC ISO-8601.

The module is longer than the others because the store stays one class: its schema, transactions and queries
(batches, items, verdicts, assignment, guidelines) share the connection handling above, and split apart they would
each need it.
"""
from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.curation.verdicts import (
    VERDICT_ALIASES,
    VERDICTS,
    FlaggerPrecision,
    agreement_table,
    cell_text,
    check_annotator,
    cohen_kappa,
    flagger_precision_of,
    item_consensus,
    line_number,
    normalise_verdict,
)
from ecisem_core.errors import InputError

__all__ = [  # the store, and (re-exported) what verdicts say, from ecisem_core.curation.verdicts
    "BUSY_TIMEOUT_S", "ITEM_COLUMNS", "REQUIRED_ITEM_COLUMNS", "VERDICTS", "VERDICT_ALIASES", "AnnotationStore",
    "FlaggerPrecision", "Progress", "cohen_kappa", "item_consensus", "normalise_verdict",
]

BUSY_TIMEOUT_S: float = 30.0
"""How long a writer waits for another writer's transaction before giving up (sqlite busy timeout)."""
ITEM_COLUMNS: tuple[str, ...] = (
    "query_id", "negative_id", "query", "positive", "negative", "source", "fn_score", "fn_flag", "fn_reasons",
)
"""Item fields taken from a triplet/flag table (missing optional ones are stored as NULL)."""
REQUIRED_ITEM_COLUMNS: tuple[str, ...] = ("query", "positive", "negative")
"""Item fields that must be present."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created TEXT NOT NULL,
    settings TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id INTEGER NOT NULL REFERENCES batches(id),
    position INTEGER NOT NULL,
    query_id TEXT,
    negative_id TEXT,
    query TEXT NOT NULL,
    positive TEXT NOT NULL,
    negative TEXT NOT NULL,
    source TEXT,
    fn_score REAL,
    fn_flag INTEGER,
    fn_reasons TEXT,
    UNIQUE (batch_id, position)
);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id INTEGER NOT NULL REFERENCES items(id),
    annotator TEXT NOT NULL CHECK (length(annotator) > 0),
    verdict TEXT NOT NULL CHECK (verdict IN ({", ".join(repr(v) for v in VERDICTS)})),
    comment TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS assignments (
    item_id INTEGER NOT NULL REFERENCES items(id),
    annotator TEXT NOT NULL CHECK (length(annotator) > 0),
    shared INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, annotator)
);
CREATE TABLE IF NOT EXISTS guidelines (
    batch_id INTEGER PRIMARY KEY REFERENCES batches(id),
    text TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_by_item ON verdicts (item_id, annotator, id);
CREATE INDEX IF NOT EXISTS items_by_ids ON items (batch_id, query_id, negative_id);
"""

_CURRENT = """
SELECT v.* FROM verdicts v
WHERE v.id = (SELECT MAX(w.id) FROM verdicts w WHERE w.item_id = v.item_id AND w.annotator = v.annotator)
"""

_MINE = """(NOT EXISTS (SELECT 1 FROM assignments a JOIN items j ON j.id = a.item_id WHERE j.batch_id = ?)
        OR EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.annotator = ?))"""
"""SQL condition on item ``i``: the batch (first parameter) has no assignment, or ``i`` is assigned to the
annotator (second parameter)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Progress:
    """An annotator's progress on a batch: ``done`` items answered (any verdict) of ``total``."""

    done: int
    total: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


class AnnotationStore:
    """Batches, items and verdicts in one SQLite file (created on first use).

    Example:
        >>> import tempfile, os
        >>> store = AnnotationStore(os.path.join(tempfile.mkdtemp(), "a.sqlite"))
        >>> b = store.create_batch("demo", pd.DataFrame({"query": ["q"], "positive": ["p"], "negative": ["n"]}))
        >>> item = store.next_item(b, "ann")
        >>> _ = store.record_verdict(item["id"], "ann", "fn", "answers the query")
        >>> store.progress(b, "ann")
        Progress(done=1, total=1)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._init_schema()

    # -- connections and transactions -------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection in autocommit mode (transactions are explicit), busy timeout, FK checks, full sync."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` on a fresh connection; rolled back on any exception."""
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def _init_schema(self) -> None:
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:  # switching to WAL needs a moment of exclusivity; retry while another process initialises
            try:
                conn = self.connect()
                try:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                finally:
                    conn.close()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: cannot switch the annotation store to WAL (journal_mode={mode})")
        with self.transaction() as conn:  # statements one by one: executescript() would COMMIT on its own
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` ("ok" when the file is consistent)."""
        with self._reader() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- batches and items ------------------------------------------------------------------------------------

    def create_batch(
        self, name: str, items: pd.DataFrame | None = None, settings: Mapping[str, Any] | None = None
    ) -> int:
        """Create a batch (and add ``items`` in the same transaction); returns the batch id."""
        if not str(name).strip():
            raise InputError("a batch needs a name")
        settings_json = json.dumps(dict(settings or {}), sort_keys=True, default=str)
        rows = _item_rows(items) if items is not None else []
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO batches (name, created, settings) VALUES (?, ?, ?)", (str(name), _now(), settings_json)
            )
            batch_id = int(cur.lastrowid)
            _insert_items(conn, batch_id, rows)
        return batch_id

    def add_items(self, batch_id: int, items: pd.DataFrame) -> int:
        """Append items to a batch (positions continue after the last one); returns how many were added."""
        rows = _item_rows(items)
        with self.transaction() as conn:
            self._require_batch(conn, batch_id)
            _insert_items(conn, batch_id, rows)
        return len(rows)

    def list_batches(self) -> pd.DataFrame:
        """One row per batch: id, name, created, settings (dict), n_items, n_annotators, n_verdicts (current)."""
        with self._reader() as conn:
            rows = conn.execute(
                f"""
                SELECT b.id, b.name, b.created, b.settings,
                       (SELECT COUNT(*) FROM items i WHERE i.batch_id = b.id) AS n_items,
                       (SELECT COUNT(DISTINCT v.annotator) FROM verdicts v JOIN items i ON i.id = v.item_id
                         WHERE i.batch_id = b.id) AS n_annotators,
                       (SELECT COUNT(*) FROM ({_CURRENT}) c JOIN items i ON i.id = c.item_id
                         WHERE i.batch_id = b.id) AS n_verdicts
                FROM batches b ORDER BY b.id
                """
            ).fetchall()
        frame = pd.DataFrame(
            [dict(r) for r in rows],
            columns=["id", "name", "created", "settings", "n_items", "n_annotators", "n_verdicts"],
        )
        frame["settings"] = [json.loads(s) for s in frame["settings"]]
        return frame

    def items(self, batch_id: int) -> pd.DataFrame:
        """The items of a batch in position order (columns: id, batch_id, position, and :data:`ITEM_COLUMNS`)."""
        with self._reader() as conn:
            rows = conn.execute("SELECT * FROM items WHERE batch_id = ? ORDER BY position", (batch_id,)).fetchall()
        cols = ["id", "batch_id", "position", *ITEM_COLUMNS]
        frame = pd.DataFrame([dict(r) for r in rows], columns=cols)
        frame["fn_flag"] = frame["fn_flag"].map(lambda v: None if v is None else bool(v))
        return frame

    def next_item(self, batch_id: int, annotator: str) -> dict[str, Any] | None:
        """The first item (by position) this annotator has not answered yet — among the items assigned to them
        when the batch has an assignment — as a dict; None when done."""
        with self._reader() as conn:
            row = conn.execute(
                f"""
                SELECT i.* FROM items i
                WHERE i.batch_id = ? AND {_MINE} AND NOT EXISTS (
                    SELECT 1 FROM verdicts v WHERE v.item_id = i.id AND v.annotator = ?)
                ORDER BY i.position LIMIT 1
                """,
                (batch_id, batch_id, annotator, annotator),
            ).fetchone()
        return dict(row) if row is not None else None

    # -- assignment and guidelines ----------------------------------------------------------------------------

    def assign(self, batch_id: int, assignments: pd.DataFrame) -> int:
        """Replace the batch's assignment with ``assignments`` (columns item_id, annotator, optional shared; see
        :func:`ecisem_core.curation.assignment.assign_items`) in one transaction; returns how many rows. An empty
        frame opens the batch to every annotator again. Verdicts already given are kept."""
        rows = [(int(r["item_id"]), check_annotator(r["annotator"]), int(bool(r.get("shared", False))))
                for r in assignments.to_dict("records")]
        with self.transaction() as conn:
            self._require_batch(conn, batch_id)
            ours = {int(r[0]) for r in conn.execute("SELECT id FROM items WHERE batch_id = ?", (batch_id,))}
            stray = sorted({r[0] for r in rows} - ours)
            if stray:
                raise InputError(f"item(s) {stray[:5]} are not in batch {batch_id}")
            conn.execute("DELETE FROM assignments WHERE item_id IN (SELECT id FROM items WHERE batch_id = ?)",
                         (batch_id,))
            conn.executemany("INSERT INTO assignments (item_id, annotator, shared) VALUES (?, ?, ?)", rows)
        return len(rows)

    def assignments(self, batch_id: int) -> pd.DataFrame:
        """The batch's assignment: columns item_id, position, annotator, shared (empty: open to everyone)."""
        with self._reader() as conn:
            rows = conn.execute(
                """SELECT a.item_id, i.position, a.annotator, a.shared FROM assignments a
                   JOIN items i ON i.id = a.item_id WHERE i.batch_id = ? ORDER BY i.position, a.annotator""",
                (batch_id,),
            ).fetchall()
        frame = pd.DataFrame([dict(r) for r in rows], columns=["item_id", "position", "annotator", "shared"])
        frame["shared"] = frame["shared"].astype(bool)
        return frame

    def set_guidelines(self, batch_id: int, text: str) -> None:
        """The researcher's guidelines for the batch's annotators (replaces earlier ones; "" removes them)."""
        with self.transaction() as conn:
            self._require_batch(conn, batch_id)
            conn.execute("DELETE FROM guidelines WHERE batch_id = ?", (batch_id,))
            if str(text or "").strip():
                conn.execute("INSERT INTO guidelines (batch_id, text, updated) VALUES (?, ?, ?)",
                             (batch_id, str(text), _now()))

    def guidelines(self, batch_id: int) -> str:
        """The batch's guidelines ("" when none)."""
        with self._reader() as conn:
            row = conn.execute("SELECT text FROM guidelines WHERE batch_id = ?", (batch_id,)).fetchone()
        return str(row[0]) if row is not None else ""

    # -- verdicts ---------------------------------------------------------------------------------------------

    def record_verdict(self, item_id: int, annotator: str, verdict: str, comment: str = "") -> int:
        """Append a verdict (committed and synced on return); returns its id. It becomes the annotator's current
        verdict on the item; earlier ones stay as history."""
        annotator = check_annotator(annotator)
        verdict = normalise_verdict(verdict)
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM items WHERE id = ?", (int(item_id),)).fetchone() is None:
                raise InputError(f"no item with id {item_id}")
            cur = conn.execute(
                "INSERT INTO verdicts (item_id, annotator, verdict, comment, created) VALUES (?, ?, ?, ?, ?)",
                (int(item_id), annotator, verdict, str(comment or ""), _now()),
            )
            return int(cur.lastrowid)

    def record_verdicts(self, batch_id: int, verdicts: pd.DataFrame) -> int:
        """Append many verdicts in one transaction (all or nothing); returns how many.

        ``verdicts`` has ``verdict``, ``annotator``, optional ``comment`` and either ``item_id`` or
        (``query_id``, ``negative_id``) identifying an item of this batch; optional ``file``/``line`` columns
        (from :func:`ecisem_core.curation.verdict_csv.read_verdicts_csv`) locate a bad row in error messages.
        """
        with self.transaction() as conn:
            self._require_batch(conn, batch_id)
            by_id = {
                int(r["id"]): int(r["id"])
                for r in conn.execute("SELECT id FROM items WHERE batch_id = ?", (batch_id,))
            }
            by_key: dict[tuple[str, str], int] = {}
            for r in conn.execute("SELECT id, query_id, negative_id FROM items WHERE batch_id = ?", (batch_id,)):
                by_key.setdefault((str(r["query_id"]), str(r["negative_id"])), int(r["id"]))
            now = _now()
            rows = []
            for rec in verdicts.to_dict("records"):
                where = (rec.get("file"), rec.get("line"))
                try:
                    item = _resolve_item(rec, by_id, by_key)
                    rows.append((item, check_annotator(rec.get("annotator")), normalise_verdict(rec.get("verdict")),
                                 cell_text(rec.get("comment")), now))
                except InputError as exc:
                    raise InputError(exc.problem, where[0], line_number(where[1])) from None
            conn.executemany(
                "INSERT INTO verdicts (item_id, annotator, verdict, comment, created) VALUES (?, ?, ?, ?, ?)", rows
            )
        return len(rows)

    def verdicts(self, batch_id: int, history: bool = False) -> pd.DataFrame:
        """Verdicts of a batch with their item: current ones (one per item and annotator) or, with
        ``history=True``, every answer ever given. Columns: verdict_id, item_id, position, query_id, negative_id,
        source, fn_score, fn_flag, annotator, verdict, comment, time."""
        source = "verdicts" if history else f"({_CURRENT})"
        with self._reader() as conn:
            rows = conn.execute(
                f"""
                SELECT v.id AS verdict_id, i.id AS item_id, i.position, i.query_id, i.negative_id, i.source,
                       i.fn_score, i.fn_flag, v.annotator, v.verdict, v.comment, v.created AS time
                FROM {source} v JOIN items i ON i.id = v.item_id
                WHERE i.batch_id = ? ORDER BY v.id
                """,
                (batch_id,),
            ).fetchall()
        cols = ["verdict_id", "item_id", "position", "query_id", "negative_id", "source", "fn_score", "fn_flag",
                "annotator", "verdict", "comment", "time"]
        frame = pd.DataFrame([dict(r) for r in rows], columns=cols)
        frame["fn_flag"] = frame["fn_flag"].map(lambda v: None if v is None else bool(v))
        return frame

    def progress(self, batch_id: int, annotator: str) -> Progress:
        """How many of the batch's items (of those assigned to this annotator, when the batch has an assignment)
        this annotator has answered."""
        with self._reader() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM items i WHERE i.batch_id = ? AND {_MINE}",
                                 (batch_id, batch_id, annotator)).fetchone()[0]
            done = conn.execute(
                f"""SELECT COUNT(DISTINCT v.item_id) FROM verdicts v JOIN items i ON i.id = v.item_id
                   WHERE i.batch_id = ? AND {_MINE} AND v.annotator = ?""",
                (batch_id, batch_id, annotator, annotator),
            ).fetchone()[0]
        return Progress(int(done), int(total))

    def agreement(self, batch_id: int) -> pd.DataFrame:
        """Cohen's κ for every pair of annotators over the items both answered (current verdicts; the three
        verdicts are the categories). Columns: annotator_a, annotator_b, n_items, observed, kappa
        (:func:`~ecisem_core.curation.verdicts.agreement_table`)."""
        return agreement_table(self.verdicts(batch_id))

    def flagger_precision(self, batch_id: int) -> FlaggerPrecision:
        """Precision of the flagger on judged items (see :class:`FlaggerPrecision`); items stored without
        ``fn_flag`` count as flagged (a batch is normally built from the flagged list)."""
        return flagger_precision_of(self.verdicts(batch_id))

    # -- helpers ------------------------------------------------------------------------------------------------

    @staticmethod
    def _require_batch(conn: sqlite3.Connection, batch_id: int) -> None:
        if conn.execute("SELECT 1 FROM batches WHERE id = ?", (int(batch_id),)).fetchone() is None:
            raise InputError(f"no batch with id {batch_id}")


def _resolve_item(rec: Mapping[str, Any], by_id: dict[int, int], by_key: dict[tuple[str, str], int]) -> int:
    item = rec.get("item_id")
    if item is not None and not (isinstance(item, float) and np.isnan(item)) and cell_text(item) != "":
        try:
            key = int(float(item))
        except (TypeError, ValueError):
            raise InputError(f"item_id {item!r} is not a number") from None
        if key not in by_id:
            raise InputError(f"item {key} is not in this batch")
        return by_id[key]
    q, n = cell_text(rec.get("query_id")), cell_text(rec.get("negative_id"))
    if not q or not n:
        raise InputError("row names no item: give item_id, or query_id and negative_id")
    if (q, n) not in by_key:
        raise InputError(f"no item of this batch has query_id {q!r} and negative_id {n!r}")
    return by_key[(q, n)]


def _item_rows(items: pd.DataFrame) -> list[tuple[Any, ...]]:
    missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise InputError(f"items lack column(s) {missing}")
    rows = []
    for rec in items.to_dict("records"):
        vals = []
        for col in ITEM_COLUMNS:
            v = rec.get(col)
            if v is not None and not isinstance(v, str) and pd.isna(v):
                v = None
            if col == "fn_score" and v is not None:
                v = float(v)
            elif col == "fn_flag" and v is not None:
                v = int(bool(v))
            elif col not in ("fn_score", "fn_flag") and v is not None:
                v = str(v)
            vals.append(v)
        rows.append(tuple(vals))
    return rows


def _insert_items(conn: sqlite3.Connection, batch_id: int, rows: list[tuple[Any, ...]]) -> None:
    start = conn.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM items WHERE batch_id = ?", (batch_id,)).fetchone()[0]
    placeholders = ", ".join("?" for _ in ITEM_COLUMNS)
    conn.executemany(
        f"INSERT INTO items (batch_id, position, {', '.join(ITEM_COLUMNS)}) VALUES (?, ?, {placeholders})",
        [(batch_id, start + k, *row) for k, row in enumerate(rows)],
    )
