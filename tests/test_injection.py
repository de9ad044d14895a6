"""Injection without script (issue 14): CSV outputs neutralise formula cells (OWASP), user text shown in
Streamlit markdown or HTML is escaped."""
from __future__ import annotations

import json

import markdown_it
import pandas as pd

from ecisem_core.cli import main
from ecisem_core.io.csvsafe import neutralise_cell, safe_csv
from ecisem_core.ui.text import html_escape, md_escape


def test_formula_cells_get_a_quote_in_text_columns_only():
    frame = pd.DataFrame({"source": ["=HYPERLINK(\"http://x\")", "+1+2", "-cmd", "@SUM(A1)", "plain", "-5", "\tx"],
                          "n": [-1, 2, 3, 4, 5, 6, 7], "eci": [-0.5, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    out = safe_csv(frame)
    assert out["source"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1+2", "'-cmd", "'@SUM(A1)", "plain", "-5",
                                      "'\tx"]
    assert out["n"].tolist() == frame["n"].tolist() and out["eci"].tolist() == frame["eci"].tolist()
    assert frame["source"][0].startswith("=")                 # the caller's frame is untouched
    clean = pd.DataFrame({"source": ["a", "b"]})
    assert safe_csv(clean) is clean                           # nothing to do: the same frame (byte-identical output)
    assert neutralise_cell(3) == 3 and neutralise_cell(None) is None


def test_sources_csv_and_flag_csv_neutralise_a_formula_source(tmp_path):
    rows = [{"query": f"apple question {i}", "positive": f"apple answer {i} pie",
             "negative": f"{'pear' if i % 2 else 'apple'} tart {i}", "source": "=HYPERLINK(\"http://evil\")"
             if i % 2 else "@ok"} for i in range(20)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["score", str(data), "--encoder", "tfidf", "--out", str(tmp_path / "o"), "--quiet",
                 "--bootstrap", "5"]) == 0
    text = (tmp_path / "o" / "sources.csv").read_text(encoding="utf-8")
    assert "\n=" not in text and "\n@" not in text and "'=HYPERLINK" in text
    src = pd.read_csv(tmp_path / "o" / "sources.csv")
    assert pd.api.types.is_numeric_dtype(src["eci_sem"])
    assert main(["flag", str(data), "--encoder", "tfidf", "--out", str(tmp_path / "f.csv"), "--all",
                 "--quiet"]) == 0
    flagged = pd.read_csv(tmp_path / "f.csv")
    assert not flagged.select_dtypes("object").apply(lambda c: c.astype(str).str.match(r"[=+@]")).any().any()


def _render(md: str) -> str:
    return markdown_it.MarkdownIt("commonmark").render(md)


def test_md_escape_renders_as_text():
    for name in ("[Click to re-login](https://evil.example)", "**bold** _it_", "<img src=x onerror=alert(1)>",
                 "# heading\n- item", ":red[red] $x^2$ `code`", "a\\b"):
        html = _render(f"judged by {md_escape(name)}")
        assert "<a " not in html and "<strong>" not in html and "<em>" not in html and "<img" not in html
        assert "<h1>" not in html and "<li>" not in html and "<code>" not in html
    assert html_escape('<img src="x">') == "&lt;img src=&quot;x&quot;&gt;"
    assert "re-login" in _render(md_escape("[Click to re-login](https://x)"))
