"""IDF-weighted highlighting of the tokens a text shares with other texts, as safe HTML.

Used by the dashboard to show why a triplet is (lexically) close: in the negative, the words it shares with the
query or the positive are marked, more strongly the rarer they are. Every piece of text is passed through
:func:`html.escape` (quotes included), so a passage containing ``<script>`` or ``"`` is shown, never run.

    idf = idf_table(passages)                     # token → smoothed BM25 idf over the passages
    html = highlight_shared(negative, [query, positive], idf)

A token t of ``text`` (word tokenizer: ``\\w+``, compared lower-cased, as :func:`ecisem_core.metric.lexical.word_tokenize`)
is marked when it occurs in any of ``others`` and its share ``idf(t) / top`` (``top`` = the table's largest idf)
is at least ``MIN_SHARE``; the mark's opacity is that share (tokens without an idf count as the rarest), so
function words shared by everything stay unmarked and rare shared words stand out.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from ecisem_core.metric.lexical import binary_term_matrix, idf_vector, word_tokenize

TOKEN = re.compile(r"\w+", re.UNICODE)
"""Same token pattern as :func:`ecisem_core.metric.lexical.word_tokenize` (which lower-cases first)."""
MIN_SHARE = 0.35
"""Shared tokens with idf below this share of the largest idf are not marked: on a corpus of a thousand passages
that leaves out words found in more than about a tenth of them ("the", "for", "its"), which carry no evidence."""
MARK_RGB = (255, 196, 0)
"""Colour of the marks (amber), drawn with an IDF-scaled alpha."""


class IdfTable(dict):
    """token → idf, with ``top`` = the largest idf (the scale of the marks)."""

    @property
    def top(self) -> float:
        if "_top" not in self.__dict__:
            self.__dict__["_top"] = max(self.values(), default=1.0)
        return self.__dict__["_top"]


def idf_table(passages: Iterable[str]) -> IdfTable:
    """token → smoothed BM25 idf ln(1 + (D − df + 0.5)/(df + 0.5)) over the unique passages (word tokenizer)."""
    docs = list(dict.fromkeys(str(p) for p in passages))
    x, vocab = binary_term_matrix(docs, word_tokenize)
    idf = idf_vector(x, len(vocab))
    return IdfTable({tok: float(idf[i]) for tok, i in vocab.items()})


def shared_tokens(text: str, others: Sequence[str], idf: Mapping[str, float] | None = None) -> dict[str, float]:
    """Unique lower-cased tokens of ``text`` that occur in any of ``others``, with their idf (∞ when unknown)."""
    seen = set()
    for o in others:
        seen.update(word_tokenize(str(o)))
    idf = idf or {}
    return {t: idf.get(t, float("inf")) for t in dict.fromkeys(word_tokenize(str(text))) if t in seen}


def _share(value: float, top: float) -> float:
    return 1.0 if not np.isfinite(value) or top <= 0 else min(max(value / top, 0.0), 1.0)


def highlight_shared(text: str, others: Sequence[str], idf: Mapping[str, float] | None = None, *,
                     top: float | None = None, title: bool = True) -> str:
    """``text`` as HTML with the tokens it shares with ``others`` wrapped in ``<mark>``; everything escaped.

    ``top``: the idf that gets full opacity (default ``idf.top`` for an :class:`IdfTable`, else the largest value).

    Example:
        >>> highlight_shared("Paris <b>", ["paris"], {"paris": 2.0})
        '<mark style="background: rgba(255,196,0,1.00); padding: 0 1px; border-radius: 2px" title="idf 2.00">Paris</mark> &lt;b&gt;'
    """
    text = str(text)
    if top is None:
        top = getattr(idf, "top", None) or max((idf or {}).values(), default=1.0)
    shared = {t: v for t, v in shared_tokens(text, others, idf).items() if _share(v, top) >= MIN_SHARE}
    if not shared:
        return html.escape(text, quote=True)
    out, last = [], 0
    for m in TOKEN.finditer(text):
        tok = m.group(0).lower()
        if tok not in shared:
            continue
        out.append(html.escape(text[last : m.start()], quote=True))
        value = shared[tok]
        alpha = _share(value, top)
        r, g, b = MARK_RGB
        tip = f' title="idf {value:.2f}"' if title and np.isfinite(value) else ""
        out.append(f'<mark style="background: rgba({r},{g},{b},{alpha:.2f}); padding: 0 1px; '
                   f'border-radius: 2px"{tip}>{html.escape(m.group(0), quote=True)}</mark>')
        last = m.end()
    out.append(html.escape(text[last:], quote=True))
    return "".join(out)


def highlight_triplet(query: str, positive: str, negative: str,
                      idf: Mapping[str, float] | None = None) -> dict[str, str]:
    """HTML of the three texts: the query marked against the negative, the positive against the negative,
    the negative against query ∪ positive (what ρ measures: the negative's words already in q or p)."""
    return {
        "query": highlight_shared(query, [negative], idf),
        "positive": highlight_shared(positive, [negative], idf),
        "negative": highlight_shared(negative, [query, positive], idf),
    }
