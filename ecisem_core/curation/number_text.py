"""Numbers as text for a whole column at once: ``format(float(v), spec)`` for every v, for the fixed-point specs
the flagger's reasons use (``.2f``, ``+.2f``, ``.0f``, …), without a Python call per value.

Python's ``format(v, ".{d}f")`` writes the exact binary value of v correctly rounded to d decimals (ties to even). With
k = rint(|v|·10^d) computed in float64, the product |v|·10^d is rounded once (10^d is exact for d ≤ 22), so its error
is at most half an ulp: below 10⁻¹⁰ while |v|·10^d < 10⁶. Where the product is further than 10⁻⁶ from a
half-integer, k is therefore the correctly rounded value, and the text is

    sign + str(k // 10^d) + "." + str(k mod 10^d) zero-padded to d digits      (no "." when d = 0)

with sign = "-" when v's sign bit is set (Python writes "-0.00" for -0.001 and for -0.0), else "+" for a ``+`` spec
and "" otherwise. Those texts are taken from a table of every k up to the column's largest (a similarity to two
decimals: 101 entries), so a million values cost two array lookups. Every other value (near a tie, too large, not
finite), every other spec and a column with fewer values than its table would have entries are formatted by Python
itself, so the texts are always exactly Python's (tests/test_number_text.py checks them against ``format``).
"""
from __future__ import annotations

import re

import numpy as np

_FIXED = re.compile(r"(\+?)\.(\d)f")
_LIMIT = 1e6
_TIE_MARGIN = 1e-6


def format_numbers(values: np.ndarray, spec: str) -> np.ndarray:
    """``format(float(v), spec)`` of every value, as an object array of ``str`` (module docstring).

    >>> format_numbers(np.array([0.714, -0.001, 2.5, float("nan")]), ".2f").tolist()
    ['0.71', '-0.00', '2.50', 'nan']
    >>> format_numbers(np.array([0.125, 3.0]), "+.2f").tolist(), format_numbers(np.array([2.5, 12.6]), ".0f").tolist()
    (['+0.12', '+3.00'], ['2', '13'])
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    fixed = _FIXED.fullmatch(spec)
    if fixed is None or v.size == 0:
        return _python(v, spec)
    digits = int(fixed.group(2))
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(v) * 10.0**digits
        safe = np.isfinite(scaled) & (scaled < _LIMIT) & (np.abs(scaled - np.floor(scaled) - 0.5) > _TIE_MARGIN)
    k = np.rint(np.where(safe, scaled, 0.0)).astype(np.int64)
    top = int(k.max())
    if top + 1 > v.size:  # a table larger than the column: Python's own loop is cheaper
        return _python(v, spec)
    unit = 10**digits
    magnitudes = [f"{j // unit}.{j % unit:0{digits}d}" if digits else str(j) for j in range(top + 1)]
    positive = np.array([("+" if fixed.group(1) else "") + t for t in magnitudes], dtype=object)
    negative = np.array(["-" + t for t in magnitudes], dtype=object)
    out = np.where(np.signbit(v), negative[k], positive[k])
    rest = np.flatnonzero(~safe)
    if rest.size:
        out[rest] = _python(v[rest], spec)
    return out


def _python(v: np.ndarray, spec: str) -> np.ndarray:
    return np.array([format(float(x), spec) for x in v], dtype=object)
