"""Junk negatives: the text normalisation that decides "same text", and the LLM preamble / refusal patterns.

A mined or generated "negative" can be junk — empty text, an LLM preamble, a refusal, one line repeated under many
queries. Junk is its own flag (``junk_flag``), not a false negative: junk is not relevant, it is degenerate. This
module holds the named junk thresholds (each overridable through
:class:`~ecisem_core.curation.rules.FlagConfig`), :func:`normalise_text` (the key for boilerplate and "identical to
the positive") and :func:`junk_pattern_mask`; :func:`~ecisem_core.curation.fn_score.flag_triplets` combines them.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

MIN_TOKENS: int = 4
"""Junk "very short" when the negative has fewer word tokens than this (0 tokens: "empty")."""
BOILERPLATE_QUERIES: int = 5
"""Junk "boilerplate" when, within one source, the same (normalised) negative text appears under ≥ this many
distinct queries …"""
BOILERPLATE_SHARE: float = 0.1
"""… and under ≥ this share of the source's distinct queries (a mined passage legitimately recurs under a few
queries of a large source; a generated template recurs under a large share of them)."""
JUNK_PATTERNS: tuple[str, ...] = (
    r"^\W*here (?:are|is) (?:\w+ ){0,6}?(?:hard[ -]?)?negatives?\b",
    r"^\W*here (?:are|is) [^:]{0,100}:$",
    r"^\W*(?:sure|certainly|of course|absolutely)\b[ ,!.]*(?:here|i\b|below)",
    r"^\W*(?:i'm sorry|i am sorry|sorry,|unfortunately,? i\b)",
    r"^\W*i (?:cannot|can't|can not|won't|will not|am unable|'m unable|am not able)\b",
    r"^\W*as an? (?:ai|(?:large )?language model)\b",
    r"is there (?:something|anything) else i can help",
)
"""Regexes of LLM preambles and refusals, searched (case-insensitive) in the *normalised* negative (lower-cased,
whitespace collapsed to single spaces, first :data:`PATTERN_SCAN_CHARS` characters): "Here are three HARD NEGATIVE
passages…", a "Here is …:" line with nothing after it, "Sure, here…", "I'm sorry…", "I cannot…", "As an AI…",
"…Is there something else I can help you with?". All but the last are anchored at the start (so a passage that
merely mentions "an AI" is not junk) and start with a literal where possible (fast)."""
PATTERN_SCAN_CHARS: int = 400
"""Preamble/refusal patterns are searched in the first this-many characters of a negative."""


def normalised_codes(texts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(a code per text, the distinct normalised texts): ``uniques[codes]`` is :func:`normalise_text` of ``texts``,
    and two texts share a code exactly when their normalised forms are equal. Each distinct text is normalised once;
    callers that group or compare texts use the integer codes, not a string per row (at 1M triplets the per-row
    strings cost about a third of the false-negative flags).

    >>> codes, uniques = normalised_codes(pd.Series(["  Same\tTEXT ", "other", "same text"]))
    >>> codes.tolist(), uniques.tolist()
    ([0, 1, 0], ['same text', 'other'])
    """
    codes, uniques = pd.factorize(texts.astype(str))
    norm = np.array([" ".join(t.lower().split()) for t in uniques], dtype=object)
    norm_codes, norm_uniques = pd.factorize(norm)
    return np.asarray(norm_codes, dtype=np.int64)[codes], np.asarray(norm_uniques, dtype=object)


def normalise_text(texts: pd.Series) -> np.ndarray:
    """Lower-case, whitespace collapsed, stripped (computed once per unique text): the key for "same text"
    (boilerplate, identical to the positive).

    >>> normalise_text(pd.Series(["  Same\tTEXT ", "same text"])).tolist()
    ['same text', 'same text']
    """
    codes, uniques = normalised_codes(texts)
    return uniques[codes] if len(codes) else np.array([], dtype=object)


def pattern_hits(uniques: np.ndarray, patterns: tuple[str, ...] = JUNK_PATTERNS) -> np.ndarray:
    """For each of some distinct normalised texts, whether any preamble/refusal pattern matches its first
    :data:`PATTERN_SCAN_CHARS` characters."""
    compiled = [re.compile(p, re.IGNORECASE) for p in patterns]
    return np.array([any(p.search(t[:PATTERN_SCAN_CHARS]) for p in compiled) for t in uniques], dtype=bool)


def junk_pattern_mask(normalised: np.ndarray, patterns: tuple[str, ...] = JUNK_PATTERNS) -> np.ndarray:
    """True where a normalised text (:func:`normalise_text`) matches any preamble/refusal pattern; each unique text
    is searched once, in its first :data:`PATTERN_SCAN_CHARS` characters (:func:`pattern_hits`).

    >>> junk_pattern_mask(normalise_text(pd.Series(["Here are three HARD NEGATIVE passages:", "As an AI, I can't",
    ...     "Paris is the capital.", "The lab built an AI model."]))).tolist()
    [True, True, False, False]
    """
    normalised = np.asarray(normalised, dtype=object)
    if not patterns or normalised.size == 0:
        return np.zeros(normalised.size, dtype=bool)
    codes, uniques = pd.factorize(normalised)
    return pattern_hits(uniques, patterns)[codes]
