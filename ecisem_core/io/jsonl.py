"""The one JSON Lines reader: (line number, parsed value) for every non-blank line of a file, with
:class:`~ecisem_core.errors.InputError` naming the file, the line and the problem."""
from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ecisem_core.confine import checked
from ecisem_core.errors import InputError


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A JSON escape of a UTF-16 surrogate: legal in pairs, a lone one is no Unicode character."""


def _lone_surrogate(value: Any) -> str | None:
    """The first string (or key) of a parsed value holding a lone surrogate, walked without recursion."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return v
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


def loads_checked(text: str, path: str | Path | None, line: int | None, what: str = "malformed JSON") -> Any:
    """``json.loads`` whose every failure is an :class:`InputError` naming the file and line: malformed JSON
    (the line of the error inside ``text`` is added to ``line``), nesting too deep for the parser, and strings
    holding a lone surrogate escape (``"\\ud800"``), which are no Unicode text and would fail later."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        at = (line or 1) + exc.lineno - 1
        raise InputError(f"{what} ({exc.msg}, column {exc.colno})", path, at) from None
    except RecursionError:
        raise InputError("JSON nested too deeply to read", path, line) from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(value)
        if bad is not None:
            m = re.search(r"[\ud800-\udfff]", bad)
            at = line
            if line is None or "\n" in text.strip():
                # several lines: the line of the first surrogate escape is a good pointer
                first = _SURROGATE_ESCAPE.search(text)
                at = (line or 1) + text.count("\n", 0, first.start()) if first else line
            raise InputError(f"a string holds a lone surrogate \\u{ord(m.group()):04x} (not valid Unicode text)"
                             if m else "a string is not valid Unicode text", path, at)
    return value


def iter_jsonl(path: str | Path, lines: Iterable[str] | None = None) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed JSON value) of every non-blank line of a JSON Lines file, in order.

    The file is read one line at a time as UTF-8 (a leading BOM is dropped; a line ends at ``"\\n"``,
    ``"\\r\\n"`` or ``"\\r"``), so a large file is never held in memory whole. A caller that has already read
    and decoded the file (with its own messages) passes its ``lines``; ``path`` then only names them in errors.
    The values are not checked: each caller says what a record must hold.

    Raises:
        InputError: the file is missing or unreadable, a line is not UTF-8 text, a line is not valid JSON.

    Example:
        >>> for line_no, obj in iter_jsonl("queries.jsonl"):   # doctest: +SKIP
        ...     print(line_no, obj["_id"])
    """
    path = Path(path)
    if lines is None:
        if not path.is_file():
            raise InputError("file not found", path)
        lines = _utf8_lines(path)
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        yield line_no, loads_checked(line, path, line_no, "not valid JSON")


def _utf8_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 file (leading BOM dropped; universal newlines), read lazily; a line that is not
    UTF-8 names itself."""
    try:
        fh = checked(path).open("rb")
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", path) from None
    line_no = 0
    with fh:
        for chunk in fh:  # ends at b"\n"; bytes.splitlines splits only at b"\r\n", b"\r" and b"\n"
            for raw in chunk.splitlines() if b"\r" in chunk else (chunk,):
                line_no += 1
                if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = raw[exc.start:exc.start + 1].hex()
                    raise InputError(f"not valid UTF-8 text (byte 0x{bad} at column {exc.start + 1})",
                                     path, line_no) from None
                yield line
