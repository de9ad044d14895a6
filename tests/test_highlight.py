"""IDF-weighted highlighting: everything escaped, shared rare tokens marked, common ones left plain."""
from __future__ import annotations

import re

import numpy as np

from ecisem_core.curation.highlight import MIN_SHARE, highlight_shared, highlight_triplet, idf_table, shared_tokens
from ecisem_core.metric.lexical import smoothed_idf

MARK = re.compile(r'<mark style="background: rgba\(255,196,0,([0-9.]+)\)[^"]*"(?: title="[^"]*")?>(.*?)</mark>')


def test_script_and_quotes_are_escaped_even_inside_marks():
    evil = 'Click <script>alert("pwned")</script> & "quote" \'single\' <img src=x onerror=alert(1)>'
    out = highlight_shared(evil, ["script alert img onerror"], {"script": 3.0, "alert": 3.0, "img": 3.0,
                                                                "onerror": 3.0})
    assert "<script" not in out and "<img" not in out and "</script" not in out
    assert "&lt;script&gt;" not in out  # "script" itself is marked, its brackets escaped around the mark
    assert "&lt;" in out and "&gt;" in out and "&quot;pwned&quot;" in out and "&#x27;single&#x27;" in out
    assert "&amp;" in out
    marked = [m.group(2) for m in MARK.finditer(out)]
    assert marked == ["script", "alert", "script", "img", "onerror", "alert"]
    # removing the marks leaves exactly the escaped text
    plain = MARK.sub(lambda m: m.group(2), out)
    import html

    assert html.unescape(plain) == evil


def test_no_shared_token_gives_the_escaped_text():
    assert highlight_shared("<b>bold</b>", ["nothing"], {"bold": 1.0}) == "&lt;b&gt;bold&lt;/b&gt;"


def test_opacity_follows_idf_and_common_words_stay_plain():
    idf = {"the": 0.1, "rare": 4.0, "mid": 2.0, "zzz": 8.0}
    out = highlight_shared("The rare and mid words", ["the rare mid"], idf, top=4.0)
    marks = {m.group(2): float(m.group(1)) for m in MARK.finditer(out)}
    assert marks == {"rare": 1.0, "mid": 0.5}
    assert 0.1 / 4.0 < MIN_SHARE  # "The" is shared but carries no evidence: not marked
    assert out.startswith("The <mark")


def test_matching_is_case_insensitive_and_keeps_original_case():
    out = highlight_shared("PARIS is big", ["paris"], {"paris": 1.0})
    assert ">PARIS</mark>" in out


def test_idf_table_is_smoothed_bm25_idf_over_unique_passages():
    t = idf_table(["a b", "b c", "b c", "c d"])  # duplicate passage counted once: D = 3
    assert np.isclose(t["b"], smoothed_idf(np.array([2]), 3)[0])
    assert np.isclose(t["d"], smoothed_idf(np.array([1]), 3)[0])
    assert t.top == max(t.values())


def test_shared_tokens_and_triplet():
    assert set(shared_tokens("a b c", ["c d", "b"])) == {"b", "c"}
    h = highlight_triplet("<q> cats", "dogs <p>", "cats & dogs <n>", {"cats": 2.0, "dogs": 2.0})
    assert set(h) == {"query", "positive", "negative"}
    assert all("<q>" not in v and "<p>" not in v and "<n>" not in v for v in h.values())
    assert ">cats</mark>" in h["query"] and ">dogs</mark>" in h["positive"]
    assert ">cats</mark>" in h["negative"] and ">dogs</mark>" in h["negative"]
