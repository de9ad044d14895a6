"""User text shown by Streamlit, escaped once here: file, source, annotator and batch names (and messages that
quote them) are data, never markdown or HTML.

    st.caption(f"**{md_escape(label)}** · {n:,} triplets")       # markdown contexts (markdown, caption, info …)
    st.html(f'<div class="eci-sub">{html_escape(subtitle)}</div>')  # HTML contexts
"""
from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>~$:])")
"""ASCII punctuation that CommonMark or Streamlit (``:red[…]``, ``:material/…:``, ``$…$`` LaTeX) would read as
markup; a backslash before any ASCII punctuation is a literal in CommonMark."""

_MD_ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-!|<>~$:])")


def md_escape(value: object) -> str:
    """``value`` as literal text inside Streamlit markdown: markup characters backslash-escaped, line breaks
    flattened to spaces (a name cannot start a new block)."""
    text = re.sub(r"[\r\n\t\x0b\x0c]+", " ", str(value))
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_unescape(text: str) -> str:
    """The text :func:`md_escape` was given (after newline flattening): what a reader sees on the page."""
    return _MD_ESCAPED.sub(r"\1", text)


def html_escape(value: object) -> str:
    """``value`` as literal text inside HTML (``&``, ``<``, ``>``, quotes escaped)."""
    return html.escape(str(value), quote=True)
