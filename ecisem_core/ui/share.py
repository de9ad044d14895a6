"""Share links: :class:`~ecisem_core.ui.state.Settings` ↔ URL query parameters (pure functions, no Streamlit).

    params = encode(settings)                       # {"tau": "0.1", "src": ["bm25", "llm"], ...}
    url = share_url("http://host:8501/geometry", params)
    settings, notes = decode(parse_qs_from_somewhere)   # notes: what was ignored or adjusted, in plain words

Parameter names are short and stable (:data:`PARAMS`); only settings that differ from the defaults are written,
unless ``full=True``. Query parameters that are not ours (another page's, e.g. an annotation batch id) are left
alone by :func:`merge_params`. Decoding never fails: a bad value falls back to the default (or is clamped into
its range) and says so in ``notes``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode, urlsplit

from ecisem_core.ui.state import (COLOUR_OPTIONS, DATASET_DEMO, ENCODER_DEFAULT, ENCODER_TFIDF, KAPPA_D_OPTIONS, PATH_PREFIX,
                    RANGES, UPLOAD_PREFIX, Settings)

PARAMS: dict[str, str] = {
    "dataset": "ds", "encoder": "enc", "tau": "tau", "alpha": "a", "beta": "b", "gamma": "g",
    "kappa_d": "k", "sample_size": "n", "seed": "seed", "sources": "src", "view": "view",
    "why_a": "A", "why_b": "B", "colour": "col", "query": "q", "cap": "cap",
}
"""Settings field → query-parameter name."""
OURS = frozenset(PARAMS.values())
FLOATS = ("tau", "alpha", "beta", "gamma")
INTS = ("sample_size", "seed", "cap")
TEXTS = ("view", "why_a", "why_b", "query")

ParamValue = str | list[str]


def _fmt(x: float) -> str:
    return format(float(x), ".6g")


def encode(settings: Settings, *, full: bool = False) -> dict[str, ParamValue]:
    """Query parameters for ``settings`` (only non-default ones unless ``full``). Sources are repeated ``src``."""
    default = Settings()
    out: dict[str, ParamValue] = {}
    for name, param in PARAMS.items():
        value = getattr(settings, name)
        if not full and value == getattr(default, name):
            continue
        if name == "sources":
            if value:
                out[param] = [str(s) for s in value]
        elif name in FLOATS or name == "kappa_d":
            out[param] = _fmt(value)
        elif name in INTS:
            out[param] = str(int(value))
        elif value != "":
            out[param] = str(value)
    return out


def _last(value: str | Sequence[str]) -> str:
    if isinstance(value, str):
        return value
    return str(value[-1]) if len(value) else ""


def as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


def decode(params: Mapping[str, str | Sequence[str]]) -> tuple[Settings, list[str]]:
    """Settings from query parameters, and notes on anything ignored or adjusted. Unknown parameters are
    ignored silently (they belong to someone else); ours are validated."""
    default = Settings()
    values: dict = {}
    notes: list[str] = []
    for name, param in PARAMS.items():
        if param not in params:
            continue
        raw = params[param]
        if name == "sources":
            values[name] = tuple(dict.fromkeys(s for s in as_list(raw) if s))
            continue
        text = _last(raw).strip()
        if name in FLOATS or name in INTS:
            try:
                x = float(text)
                if not math.isfinite(x):
                    raise ValueError
            except ValueError:
                notes.append(f"ignored {param}={text!r}: not a number")
                continue
            lo, hi = RANGES[name]
            if not lo <= x <= hi:
                clamped = min(max(x, lo), hi)
                notes.append(f"{param}={text} is outside [{lo:g}, {hi:g}]; using {clamped:g}")
                x = clamped
            if name in INTS:
                if x != int(x):
                    notes.append(f"{param}={text} is not a whole number; using {int(x)}")
                values[name] = int(x)
            else:
                values[name] = x
        elif name == "kappa_d":
            try:
                x = float(text)
                if not (math.isfinite(x) and x > 0):
                    raise ValueError
            except ValueError:
                notes.append(f"ignored k={text!r}: κ/d must be a positive number")
                continue
            nearest = min(KAPPA_D_OPTIONS, key=lambda o: abs(math.log(o) - math.log(x)))
            if not math.isclose(nearest, x, rel_tol=1e-9):
                notes.append(f"k={text} is not one of the κ/d steps; using {nearest:g}")
            values[name] = nearest
        elif name == "dataset":
            if text == DATASET_DEMO or (text.startswith((PATH_PREFIX, UPLOAD_PREFIX)) and len(text.split(":", 1)[1])):
                values[name] = text
            else:
                notes.append(f"ignored ds={text!r}: expected 'demo', 'path:<file>' or 'upload:<id>'")
        elif name == "encoder":
            if text in (ENCODER_DEFAULT, ENCODER_TFIDF) or (text.startswith(PATH_PREFIX) and len(text) > len(PATH_PREFIX)):
                values[name] = text
            else:
                notes.append(f"ignored enc={text!r}: expected 'default', 'tfidf' or 'path:<folder>'")
        elif name == "colour":
            if text in COLOUR_OPTIONS:
                values[name] = text
            else:
                notes.append(f"ignored col={text!r}: expected one of {', '.join(COLOUR_OPTIONS)}")
        else:
            values[name] = text
    return default.replace(**values), notes


def merge_params(current: Mapping[str, str | Sequence[str]], ours: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """``current`` query parameters with ours replaced by ``ours`` (others kept as they are)."""
    out: dict[str, ParamValue] = {k: (v if isinstance(v, str) else list(v)) for k, v in current.items()
                                  if k not in OURS}
    out.update(ours)
    return out


def query_string(params: Mapping[str, ParamValue]) -> str:
    """``a=1&src=x&src=y`` (repeated keys for lists, percent-encoded)."""
    return urlencode([(k, v) for k, vals in params.items() for v in as_list(vals)])


def share_url(base: str, params: Mapping[str, ParamValue]) -> str:
    """``base`` (scheme, host, page path; any query string dropped) + ``?`` + :func:`query_string`."""
    base = base.split("?", 1)[0].split("#", 1)[0]
    if base and not urlsplit(base).path:
        base += "/"
    qs = query_string(params)
    return f"{base}?{qs}" if qs else base
