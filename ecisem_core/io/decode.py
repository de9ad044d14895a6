"""Bytes of an input file → text: reading (gzip-compressed or not), decoding with clear encoding errors, and
the UTF-8 bytes handed to the pandas C parser."""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from ecisem_core.confine import checked
from ecisem_core.errors import InputError

_UTF8_NAMES = ("utf-8", "utf8", "utf-8-sig")


def _is_utf8(encoding: str) -> bool:
    """True when ``encoding`` names UTF-8 (with or without BOM)."""
    return encoding.lower().replace("_", "-") in _UTF8_NAMES


def read_head(p: Path, compressed: bool, n: int = 4096) -> bytes:
    """The first ``n`` bytes of a file (decompressed when ``compressed``), for format sniffing."""
    try:
        if compressed:
            with gzip.open(checked(p), "rb") as fh:
                return fh.read(n)
        with open(checked(p), "rb") as fh:
            return fh.read(n)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"cannot read file ({getattr(exc, 'strerror', None) or exc})", p) from None


def first_line(head: bytes) -> str:
    """The first line of ``head`` as text (undecodable bytes replaced)."""
    return head.split(b"\n", 1)[0].decode("utf-8", errors="replace")


def read_bytes(p: Path) -> bytes:
    """The whole content of a file, gunzipped when its name ends in ``.gz``."""
    try:
        data = checked(p).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror or exc})", p) from None
    if p.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"not a valid gzip file ({exc})", p) from None
    return data


def decode_text(data: bytes, p: Path, encoding: str) -> str:
    """Bytes → text; a UTF-8 BOM is dropped, CRLF (or CR alone, when the file has no LF) becomes LF, a wrong
    encoding names the line."""
    blank = b" \t\r\n\xef\xbb\xbf"
    if not data[:4096].strip(blank) and not data.strip(blank):
        raise InputError("file is empty", p)
    utf8 = _is_utf8(encoding)
    if utf8 and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError("file is UTF-16 text; re-save it as UTF-8 or pass encoding='utf-16'", p)
    try:
        text = data.decode("utf-8-sig" if utf8 else encoding)
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}", p) from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start:exc.start + 1].hex()
        hint = (" (looks like Latin-1 / Windows-1252 text); re-save it as UTF-8 or pass encoding='latin-1'"
                if utf8 else "")
        raise InputError(f"not valid {encoding} text: byte 0x{bad} at column {col} cannot be decoded{hint}",
                         p, line) from None
    nul = text.find("\x00")
    if nul >= 0:
        raise InputError("contains NUL characters: a binary file or UTF-16 text, not "
                         f"{encoding} text", p, text.count("\n", 0, nul) + 1)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\n" not in text:
            text = text.replace("\r", "\n")  # classic Mac OS line ends (CR only)
    return text


def parser_bytes(data: bytes, text: str, encoding: str) -> bytes:
    """UTF-8 bytes of ``text`` for the pandas C parser (BOM dropped, CRLF → LF), reusing ``data`` when it
    already is UTF-8: parsing bytes avoids a 4-byte-per-character copy of the whole text."""
    if not _is_utf8(encoding):
        return text.encode("utf-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\r" not in data:
        return data
    data = data.replace(b"\r\n", b"\n")
    return data if b"\n" in data else data.replace(b"\r", b"\n")
