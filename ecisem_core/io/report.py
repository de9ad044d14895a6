"""The load report: what the triplet loader read, kept and excluded (:class:`LoadReport`), and its parts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_EXAMPLES = 5
"""Examples kept per exclusion reason."""


@dataclass
class Exclusion:
    """Rows excluded for one reason: how many, and up to 5 examples ``{"file", "line", "value"}``."""

    reason: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FileReport:
    """One input read: its format, records in the file, candidate triplets after expansion, triplets kept."""

    file: str
    format: str
    records: int
    rows: int
    kept: int


@dataclass
class LoadReport:
    """What the loader read, kept and excluded (shown by the CLI and the dashboard).

    ``rows_read`` counts candidate triplets after expanding grouped records (one per negative); it always equals
    ``rows_kept + rows_excluded``.
    """

    files: list[FileReport] = field(default_factory=list)
    exclusions: dict[str, Exclusion] = field(default_factory=dict)
    duplicates: int = 0
    duplicates_by_source: dict[str, int] = field(default_factory=dict)
    multi_positive_queries: int = 0
    extra_positives: int = 0
    per_source: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def rows_kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def rows_excluded(self) -> int:
        return sum(e.count for e in self.exclusions.values())

    def headline(self) -> str:
        """One line: files, rows read/kept, exclusions by reason."""
        n_files = len(self.files)
        line = (f"{n_files} file{'s' if n_files != 1 else ''}: {self.rows_read:,} rows read, "
                f"{self.rows_kept:,} kept")
        if self.rows_excluded:
            reasons = ", ".join(f"{e.reason} {e.count:,}" for e in self._sorted_exclusions())
            line += f", {self.rows_excluded:,} excluded ({reasons})"
        return line

    def summary(self) -> str:
        """Human-readable, several lines: the headline, then exclusions with examples, duplicates, positives,
        per-source counts and notes."""
        out = [self.headline()]
        for e in self._sorted_exclusions():
            where = "; ".join(f"{x['file']} line {x['line']}: {x['value']}" for x in e.examples)
            out.append(f"  excluded {e.count:,} × {e.reason} (e.g. {where})")
        if self.duplicates:
            out.append(f"  {self.duplicates:,} exact duplicate triplets (same source, query, positive, negative; kept)")
        if self.multi_positive_queries:
            out.append(f"  {self.multi_positive_queries:,} queries had several positives: the first was used, "
                       f"{self.extra_positives:,} others ignored")
        if self.per_source:
            out.append("  per source: " + ", ".join(f"{k} {v:,}" for k, v in self.per_source.items()))
        out.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "files": [vars(f).copy() for f in self.files],
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_excluded": self.rows_excluded,
            "exclusions": {k: {"count": e.count, "examples": [dict(x) for x in e.examples]}
                           for k, e in self.exclusions.items()},
            "duplicates": self.duplicates,
            "duplicates_by_source": dict(self.duplicates_by_source),
            "multi_positive_queries": self.multi_positive_queries,
            "extra_positives": self.extra_positives,
            "per_source": dict(self.per_source),
            "notes": list(self.notes),
        }

    def _sorted_exclusions(self) -> list[Exclusion]:
        return sorted(self.exclusions.values(), key=lambda e: -e.count)
