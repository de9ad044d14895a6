"""The flagger's reasons, defined once: a code per reason, the label a person reads, and the template of its text.

:data:`REASONS` is the table, in the flagger's order (false-negative reasons, then junk). From it:

* :func:`~ecisem_core.curation.fn_score.flag_triplets` writes ``fn_reasons`` — every reason that fired,
  :data:`SEP`-joined, ``""`` when none; a reason's text is its :attr:`Reason.kind` (the label, prefixed
  :data:`JUNK_PREFIX` for junk) followed by its numbers (:attr:`Reason.detail`), e.g.
  ``"relative-margin rule (s_qn 0.71 > s_qp − 0.05·|s_qp| = 0.70)"``;
* :func:`reason_codes` gives the codes of an ``fn_reasons`` string back (for strings kept elsewhere, e.g. the items
  of an annotation batch), so pages select and show reasons by code, with the label defined here.

The texts are part of the outputs (``triplets.parquet``, exports, annotation items): changing a label or a
template changes them.
"""
from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecisem_core.curation.number_text import format_numbers

JUNK_PREFIX: str = "junk: "
"""Prefix of junk reasons in ``fn_reasons``."""
SEP: str = "; "
"""Separator of reasons in ``fn_reasons``."""


@dataclass(frozen=True)
class Reason:
    """One reason the flagger gives.

    Attributes:
        code: stable identifier (what code selects and filters on).
        label: what a person reads (without the junk prefix).
        junk: a junk reason (degenerate text) rather than false-negative evidence.
        detail: :meth:`str.format` template of what follows the label in ``fn_reasons`` (the numbers), with
            named fields and a format spec each (e.g. ``" (s_pn {s_pn:.2f})"``); ``""`` for none.
    """

    code: str
    label: str
    junk: bool = False
    detail: str = ""

    @property
    def kind(self) -> str:
        """How the reason is named on the pages and how its text in ``fn_reasons`` starts."""
        return JUNK_PREFIX + self.label if self.junk else self.label

    @property
    def template(self) -> str:
        """The whole text template: :attr:`kind` then :attr:`detail`."""
        return self.kind + self.detail


REASONS: tuple[Reason, ...] = (
    Reason("identical", "identical to the positive"),
    Reason("encoder_prefers", "encoder prefers the negative",
           detail=" (c = {c:.2f}: s_qn {s_qn:.2f} > s_qp {s_qp:.2f})"),
    Reason("relative_margin", "relative-margin rule",
           detail=" (s_qn {s_qn:.2f} > s_qp − {rel_margin:g}·|s_qp| = {rel_threshold:.2f})"),
    Reason("near_duplicate", "near-duplicate of the positive",
           detail=" (s_pn {s_pn:.2f}, token Jaccard {jaccard:.2f})"),
    Reason("key_terms", "contains the positive's key terms",
           detail=" ({coverage_pct:.0f}% of the IDF mass of its {n_key_terms:.0f} key terms)"),
    Reason("cross_encoder", "cross-encoder prefers the negative", detail=" (logit gap {ce_gap:+.2f})"),
    Reason("combined", "combined evidence", detail=" (fn_score {fn_score:.2f}; s_pn {s_pn:.2f})"),
    Reason("junk_empty", "empty text", junk=True),
    Reason("junk_short", "very short", junk=True, detail=" ({n_tokens:.0f} words)"),
    Reason("junk_boilerplate", "boilerplate", junk=True, detail=" (same text under {boilerplate_count:.0f} queries)"),
    Reason("junk_pattern", "LLM preamble or refusal", junk=True),
    Reason("junk_copy", "copy of the positive", junk=True),
)
"""Every reason, in the flagger's order: the order of the texts in ``fn_reasons`` and of the pages' lists."""
REASON_BY_CODE: dict[str, Reason] = {r.code: r for r in REASONS}
"""code → :class:`Reason`."""
_BY_KIND: dict[str, Reason] = {r.kind: r for r in REASONS}
_FORMATTER = string.Formatter()


def reason_code(name: str) -> str | None:
    """The code of a reason named by its code or by its :attr:`~Reason.kind`; ``None`` when neither.

    >>> reason_code("relative-margin rule"), reason_code("junk_short"), reason_code("nope")
    ('relative_margin', 'junk_short', None)
    """
    if name in REASON_BY_CODE:
        return name
    hit = _BY_KIND.get(name)
    return hit.code if hit is not None else None


def kinds_of(codes: Iterable[str]) -> list[str]:
    """The :attr:`~Reason.kind` of each code (what the pages show)."""
    return [REASON_BY_CODE[c].kind for c in codes]


def render_reason(code: str, mask: np.ndarray,
                  values: Mapping[str, np.ndarray | float]) -> tuple[np.ndarray, np.ndarray]:
    """Text of reason ``code`` for the rows where ``mask``: (those rows, their texts). ``values`` gives each field of
    its template: an array over all rows (formatted only for the masked rows) or one number for every row; each value
    is formatted as ``format(float(value), spec)`` (a column at a time,
    :func:`~ecisem_core.curation.number_text.format_numbers`)."""
    idx = np.flatnonzero(mask)
    pieces: list[str | np.ndarray] = [""]
    for literal, field, spec, _ in _FORMATTER.parse(REASON_BY_CODE[code].template):
        pieces[-1] += literal
        if field is not None:
            value = values[field]
            if np.ndim(value) == 0:
                pieces[-1] += format(float(value), spec)
            else:
                pieces += [format_numbers(np.asarray(value)[idx], spec), ""]
    text = np.full(idx.size, pieces[0], dtype=object)
    for piece in pieces[1:]:
        if isinstance(piece, np.ndarray) or piece:
            text = text + piece
    return idx, text


def join_reasons(parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Per row, the texts of ``parts`` ((rows, texts) of :func:`render_reason`; a reason's text is never empty), in
    order, :data:`SEP`-joined; ``""`` for a row with none."""
    out = np.full(n, "", dtype=object)
    has = np.zeros(n, dtype=bool)
    for rows, texts in parts:
        first = ~has[rows]
        out[rows[first]] = texts[first]
        later = rows[~first]
        if later.size:
            out[later] = out[later] + SEP + texts[~first]
        has[rows] = True
    return out


def reason_codes(reasons: str) -> list[str]:
    """The codes of the reasons in one ``fn_reasons`` string, in order.

    Each reason's text starts with its :attr:`~Reason.kind`, alone or followed by ``" ("``: a :data:`SEP`-separated
    piece that starts so is that reason; a piece that starts with no kind is not a reason of its own (the
    ``"; s_pn …"`` inside the numbers of "combined evidence") and is skipped.

    >>> reason_codes("relative-margin rule (s_qn 0.71 > s_qp − 0.05·|s_qp| = 0.70); combined evidence "
    ...              "(fn_score 0.62; s_pn 0.80)")
    ['relative_margin', 'combined']
    >>> reason_codes("identical to the positive; junk: copy of the positive"), reason_codes("")
    (['identical', 'junk_copy'], [])
    """
    out = []
    for piece in str(reasons or "").split(SEP):
        kind = piece.split(" (", 1)[0]
        if kind in _BY_KIND:
            out.append(_BY_KIND[kind].code)
    return out


def reason_code_column(reasons: pd.Series) -> pd.Series:
    """:func:`reason_codes` of every row of an ``fn_reasons`` column as tuples (same index; each distinct string
    read once)."""
    codes, uniques = pd.factorize(reasons.fillna("").astype(str))
    per_unique = [tuple(reason_codes(u)) for u in uniques]
    return pd.Series([per_unique[c] for c in codes], index=reasons.index, dtype=object)
