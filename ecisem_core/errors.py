"""The one error type for bad user input.

Every problem with a user's file (unreadable, malformed, missing column, unsafe content) raises
:class:`InputError`, whose message names the file, the line or row (when known) and the problem.
The CLI maps it to exit code 2; the dashboard shows its message.
"""
from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: ``str(err)`` reads ``"<file>, line <n>: <problem>"`` (just the problem when neither is
    known, e.g. a command-line setting).

    Attributes:
        path: the offending file (or ``None`` for in-memory input).
        line: 1-based line (text formats) or row number (tables); ``None`` when it concerns the whole file.
        problem: what is wrong, in plain words.
    """

    def __init__(self, problem: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        super().__init__(self._format())

    def _format(self) -> str:
        if self.path is None and self.line is None:
            return self.problem
        where = self.path or "<input>"
        if self.line is not None:
            where += f", line {self.line}"
        return f"{where}: {self.problem}"
