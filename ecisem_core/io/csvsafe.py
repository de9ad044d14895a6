"""CSV cells that a spreadsheet would run as a formula, neutralised (OWASP "CSV injection").

A text cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some spreadsheets
skip before one of those) gets a leading single quote, so ``=HYPERLINK(...)`` is shown as text. Only text
columns are touched: numbers (including negative ones, and signed numbers written as text) are written as they
are.
"""
from __future__ import annotations

import re

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet treat a cell as a formula."""
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""A signed number written as text (an id such as "-5") is no formula: kept as it is."""


def needs_quote(value: object) -> bool:
    return (isinstance(value, str) and value.startswith(FORMULA_START)
            and _PLAIN_NUMBER.fullmatch(value) is None)


def neutralise_cell(value: object) -> object:
    """``"'" + value`` when ``value`` is a string starting with a formula character, else ``value`` unchanged."""
    if needs_quote(value):
        return "'" + value
    return value


def safe_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every formula-like cell of its text (object / string) columns neutralised; the frame
    itself when nothing needs it (so valid outputs stay byte-identical)."""
    out = frame
    for col in frame.columns:
        series = frame[col]
        if not (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
            continue
        mask = series.map(needs_quote).to_numpy(bool)
        if mask.any():
            if out is frame:
                out = frame.copy()
            out[col] = series.map(neutralise_cell)
    return out
