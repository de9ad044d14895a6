"""`ecisem report`: one self-contained HTML file; user text escaped; figures render in a real Chromium offline."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecisem_core import demo
from ecisem_core.report.html import esc, flagged_rows, pca_2d

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
FIGURES = ("fig-leaderboard", "fig-contributions", "fig-pairwise", "fig-map")
EVIL = "</script><script>alert('owned')</script>"
EVIL_SOURCE = "<b onmouseover=alert(2)>bold</b>"


def run_cli(*args, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ecisem_core.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> Path:
    """The report of the bundled demo (default encoder from the seeded cache, PCA map, small bootstrap)."""
    d = tmp_path_factory.mktemp("report")
    demo.seed_cache(d / "cache")
    out = d / "report.html"
    proc = run_cli("report", demo.TRIPLETS_PATH, "--out", out, "--cache-dir", d / "cache", "--bootstrap", 20,
                   "--map", "pca", "--top", 30, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory) -> Path:
    """A report of data whose texts and source name are HTML/JS (TF-IDF encoder: no model needed)."""
    d = tmp_path_factory.mktemp("evil")
    rows = []
    for i in range(12):
        q = f"how do lighthouses warn ships number {i}"
        p = f"A lighthouse shows a light pattern {i} so that sailors can tell where the rocks are at night."
        rows.append({"query": q, "positive": p, "negative": f"Bread dough rises because of yeast {i}.",
                     "source": "plain"})
        neg = EVIL + " " + p if i == 0 else f"Lighthouse keepers lived on remote islands, story {i}."
        rows.append({"query": q if i else f"{q} {EVIL}", "positive": p if i else neg, "negative": neg,
                     "source": EVIL_SOURCE})
    data = d / "evil.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = d / "evil.html"
    proc = run_cli("report", data, "--out", out, "--encoder", "tfidf", "--bootstrap", 10, "--map", "pca",
                   "--quiet", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    return out


# ----------------------------------------------------------------------------------------------- the file


def test_report_is_one_self_contained_file(demo_report):
    from plotly.offline import get_plotlyjs

    text = demo_report.read_text(encoding="utf-8")
    js = get_plotlyjs()
    assert text.count(js[:200]) == 1  # plotly.js inlined exactly once
    text = text.replace(js, "")  # its own source has URL strings (links it builds on demand); the page has none
    assert not re.search(r"<script[^>]*\bsrc=", text, re.I)
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"<(img|iframe)\b", text, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I)
    for fig in FIGURES:
        assert f'id="{fig}"' in text


def test_report_content_matches_the_scores(demo_report, tmp_path):
    """The leaderboard in the page is the one `ecisem score` writes for the same data and settings."""
    text = demo_report.read_text(encoding="utf-8")
    cache = tmp_path / "cache"
    demo.seed_cache(cache)
    proc = run_cli("score", demo.TRIPLETS_PATH, "--out", tmp_path / "s", "--cache-dir", cache, "--bootstrap", 20,
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    src = pd.read_csv(tmp_path / "s" / "sources.csv")
    board = text[text.index('id="leaderboard"'):text.index('id="contributions"')]
    cells = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([\d,]+)</td><td>([^<]+)</td>", board)
    assert [c[1] for c in cells] == src["source"].tolist()
    assert [int(c[2].replace(",", "")) for c in cells] == src["n"].tolist()
    assert np.allclose([float(c[3]) for c in cells], src["eci_sem"], rtol=1e-3)
    assert "PCA, first two principal components" in text
    assert "all-MiniLM-L6-v2" in text  # the settings name the encoder
    assert "<code>0.05</code>" in text  # τ
    flagged = text[text.index('id="flagged"'):text.index('id="settings"')]
    assert flagged.count("<tr><td>") == 30  # --top 30
    assert "false negative" in flagged  # the demo's labels are shown


def test_user_text_is_escaped_everywhere(evil_report):
    text = evil_report.read_text(encoding="utf-8")
    assert "alert('owned')" not in text.replace(esc("alert('owned')"), "")  # only ever escaped
    assert "<script><" not in text and "<b onmouseover" not in text
    assert esc(EVIL) in text  # shown as text in the tables
    assert esc(EVIL_SOURCE) in text
    # in the figures' JSON the labels are escaped text too (plotly shows entities literally)
    board = text[text.index('id="fig-leaderboard"'):text.index('id="contributions"')]
    assert "\\u0026lt;b onmouseover=alert(2)\\u0026gt;" in board or "&lt;b onmouseover=alert(2)&gt;" in board


def test_bad_input_exits_2_naming_the_file(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"query": "q", "positive": "p", "negative": "n"}\n{oops\n', encoding="utf-8")
    proc = run_cli("report", bad, "--out", tmp_path / "r.html", "--encoder", "tfidf", "--quiet")
    assert proc.returncode == 2
    assert "broken.jsonl" in proc.stderr and "line 2" in proc.stderr
    assert not (tmp_path / "r.html").exists()
    proc = run_cli("report", bad, "--out", tmp_path / "r.html", "--top", -1)
    assert proc.returncode == 2 and "--top" in proc.stderr


# ----------------------------------------------------------------------------------------------- helpers


def test_pca_2d_recovers_a_plane_and_is_sign_stable():
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(50, 2)) * [5.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(8, 2)))[0].T  # 2 orthonormal directions in R^8
    x = coords @ basis + 3.0
    y = pca_2d(x)
    # distances are preserved exactly (the points lie in a plane)
    d_in = np.linalg.norm(x[:, None] - x[None], axis=-1)
    d_out = np.linalg.norm(y[:, None] - y[None], axis=-1)
    assert np.allclose(d_in, d_out)
    assert y[:, 0].var() > y[:, 1].var()
    assert np.allclose(pca_2d(x), pca_2d(x.copy()))
    assert np.allclose(np.abs(pca_2d(-x)), np.abs(y))
    assert pca_2d(x[:1]).shape == (1, 2)


def test_flagged_rows_one_per_pair_with_all_sources_best_first():
    from ecisem_core.config import ScoreConfig
    from ecisem_core.score import ScoreResult

    t = pd.DataFrame({
        "query_id": ["q1", "q1", "q2", "q3", "q3"], "negative_id": ["n1", "n1", "n2", "n3", "n4"],
        "source": ["b", "a", "a", "a", "a"], "fn_score": [0.9, 0.9, 0.95, 0.9, 0.2],
        "fn_flag": [True, True, True, True, False], "fn_reasons": ["r"] * 5,
        "query": ["x"] * 5, "positive": ["p"] * 5, "negative": ["n"] * 5, "fn_label": [np.nan] * 5,
    })
    r = ScoreResult(pd.DataFrame(), t, pd.DataFrame(), ScoreConfig(), 2, "m", {})
    rows = flagged_rows(r, top=10)
    assert rows["query_id"].tolist() == ["q2", "q1", "q3"]
    assert rows["sources"].tolist() == ["a", "a, b", "a"]
    assert len(flagged_rows(r, top=1)) == 1


# ----------------------------------------------------------------------------------------------- browser


def _open_in_chromium(path: Path, screenshot: Path) -> dict:
    from playwright.sync_api import sync_playwright

    seen: dict = {"console": [], "errors": [], "requests": [], "dialogs": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: seen["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))

            def route(r):
                seen["requests"].append(r.request.url)
                if r.request.url.startswith("file:"):
                    r.continue_()
                else:
                    r.abort()

            page.route("**/*", route)
            page.goto(path.resolve().as_uri())
            for fig in FIGURES:
                page.wait_for_selector(f"#{fig} .main-svg", timeout=60_000)
            seen["svg"] = {fig: page.locator(f"#{fig} .main-svg").count() for fig in FIGURES}
            seen["bars"] = page.locator("#fig-leaderboard .point").count()
            seen["heat"] = page.locator("#fig-pairwise .hm, #fig-pairwise image").count()
            seen["map_points"] = page.evaluate(
                "() => document.getElementById('fig-map')._fullData.reduce((n, t) => n + (t._length || 0), 0)")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return seen


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (./test.sh installs it)")
def test_report_renders_offline_in_chromium(demo_report, tmp_path):
    shot = tmp_path / "report.png"
    seen = _open_in_chromium(demo_report, shot)
    assert all(n >= 1 for n in seen["svg"].values()), seen["svg"]
    assert seen["bars"] == 7  # one bar per demo source
    assert seen["heat"] >= 1
    assert seen["map_points"] > 100
    assert seen["errors"] == []
    assert [u for u in seen["requests"] if not u.startswith("file:")] == []
    bad = [m for t, m in seen["console"] if t == "error" or re.search(r"net::|ERR_|Failed to load", m)]
    assert bad == []
    assert shot.stat().st_size > 50_000
    print(f"\nscreenshot: {shot}")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (./test.sh installs it)")
def test_escaped_report_runs_no_script_in_chromium(evil_report, tmp_path):
    seen = _open_in_chromium(evil_report, tmp_path / "evil.png")
    assert seen["dialogs"] == []
    assert seen["errors"] == []
    assert all(n >= 1 for n in seen["svg"].values())


@pytest.mark.slow
def test_report_map_uses_the_umap_projection_when_installed(tmp_path):
    from ecisem_core.report.html import projection_module

    if projection_module() is None:
        pytest.skip("ecisem_core.embed.projection is not installed")
    demo.seed_cache(tmp_path / "cache")
    out = tmp_path / "u.html"
    proc = run_cli("report", demo.TRIPLETS_PATH, "--out", out, "--cache-dir", tmp_path / "cache", "--bootstrap", 5,
                   "--points-per-source", 30, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "2-D map of the embeddings: UMAP" in out.read_text(encoding="utf-8")


def test_report_uses_the_dashboards_colours_and_pairwise_scale(demo_report):
    """One look (issue 12): a source has the same colour in the report as in the app (figures.source_colours), and
    P(A > B) has the app's colour scale."""
    from ecisem_core.report.figures import PAIRWISE_SCALE, source_colours

    text = demo_report.read_text(encoding="utf-8")
    sources = sorted(pd.read_json(demo.TRIPLETS_PATH, lines=True)["source"].unique())
    colours = source_colours(sources)
    bars = text[text.index('id="fig-leaderboard"'):]
    bars = bars[:bars.index("</script>")]
    for name in sources:
        assert colours[name] in bars
    fig_map = text[text.index('id="fig-map"'):]
    fig_map = fig_map[:fig_map.index("</script>")]
    for name in sources:
        assert re.search(r'"color":\s*"' + re.escape(colours[name]) + '"', fig_map), name
    heat = text[text.index('id="fig-pairwise"'):]
    want = json.dumps([list(stop) for stop in PAIRWISE_SCALE]).replace(" ", "")
    assert f'"colorscale":{want}' in heat[:heat.index("</script>")].replace(" ", "")
