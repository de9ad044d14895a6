"""Read a user IDF corpus: a text file with one passage per line, or JSONL with a ``text`` field per line."""
from __future__ import annotations

from pathlib import Path

from ecisem_core.confine import checked
from ecisem_core.errors import InputError
from ecisem_core.io.jsonl import iter_jsonl


def read_corpus(path: str | Path) -> list[str]:
    """Passages of an IDF corpus (blank lines skipped — they hold no tokens and add no document)."""
    path = Path(path)
    try:
        raw = checked(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read IDF corpus ({exc.strerror})", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("IDF corpus is not UTF-8 text", path, line) from None
    lines = text.splitlines()
    if path.suffix.lower() == ".jsonl":
        out = []
        for i, obj in iter_jsonl(path, lines):
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise InputError('each line needs a string field "text"', path, i)
            out.append(obj["text"])
    else:
        out = [line for line in lines if line.strip()]
    if not out:
        raise InputError("IDF corpus is empty", path)
    return out
