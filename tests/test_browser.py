"""The dashboard in a real browser: the app server (``ecisem_core.ui.serve``) on a free port, driven by Playwright
through Debian's Chromium. Leaderboard with every demo source, a weight slider that changes the table, the share link
opened in a fresh browser context, and the Geometry view. Screenshots of each view go to the test's temporary folder.

Run: ``pytest -m browser tests/test_browser.py`` (needs /usr/bin/chromium; ``.ci/run`` installs it)."""
from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ecisem_core.ui.data import DEMO_PATH

from browser_support import CHROMIUM, close_page_not_found, launch_chromium, streamlit_server, wait_idle

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1440, "height": 1800}
WAIT_MS = 240_000  # first scoring / UMAP on a busy 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on the demo (default encoder; the shipped vectors seeded into a fresh cache), stopped afterwards."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install chromium)")
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built")
    from ecisem_core import demo

    tmp = tmp_path_factory.mktemp("browser")
    demo.seed_cache(tmp / "cache")
    (tmp / "data").mkdir()
    env = {"ECISEM_CACHE_DIR": str(tmp / "cache"), "ECISEM_DATA_ROOT": str(tmp / "data")}
    with streamlit_server(env, tmp / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


BOARD = '[data-testid="eciBoard"] table tbody'


def table_sources(page) -> list[str]:
    """The Source column of the leaderboard, top to bottom."""
    return [r.get_attribute("data-source") for r in page.locator(BOARD + " tr").all()]


def table_text(page) -> str:
    return page.locator(BOARD).first.inner_text()


def wait_for_table(page, n_rows: int) -> None:
    page.wait_for_function("""([sel, n]) => document.querySelectorAll(sel + ' tr').length === n""",
                           arg=[BOARD, n_rows], timeout=WAIT_MS)


def slider(page, label: str):
    """The range input of the slider whose label contains ``label``."""
    return page.locator('[data-testid="stSlider"]').filter(has_text=label).locator('input[type="range"]')


STALE_WATCH = """() => {
    window.__stale = []; window.__bars = [];
    new MutationObserver(ms => { for (const m of ms) {
        const t = m.target;
        if (t.getAttribute('data-stale') === 'true' || t.tagName === 'SUMMARY') {
            const cs = getComputedStyle(t);
            window.__stale.push([t.tagName, cs.opacity, cs.transitionDuration]); } } })
        .observe(document.body, {subtree: true, attributes: true, attributeFilter: ['data-stale', 'class']});
    setInterval(() => document.querySelectorAll('[data-testid="stProgress"], [data-testid="stProgress"] *')
        .forEach(x => window.__bars.push(getComputedStyle(x).transitionDuration)), 50); }"""
"""Records the tag, opacity and transition of every element a rerun marks stale and of every expander header whose
style changes (``window.__stale``), and every 50 ms the transitions of any progress bar (``window.__bars``)."""


def shot(page, path: Path) -> None:
    page.wait_for_timeout(800)  # let plotly finish its transition
    page.screenshot(path=str(path), full_page=True)


def test_dashboard_in_chromium(server, browser, tmp_path):
    demo_sources = sorted(pd.read_json(DEMO_PATH, lines=True)["source"].unique())
    t_start = time.monotonic()
    page = browser.new_context(viewport=VIEWPORT, permissions=["clipboard-read", "clipboard-write"]).new_page()

    # 1. the leaderboard renders with every source
    page.goto(server + "/")
    wait_for_table(page, len(demo_sources))
    before = table_sources(page)
    assert sorted(before) == demo_sources
    page.get_by_text("ECI_sem by source").first.wait_for(timeout=WAIT_MS)
    header = page.locator('[data-testid="eciBoard"] th').filter(has_text="classic ECI")
    header.click()  # the table sorts on click, in the browser
    header.click()
    page.wait_for_function("""sel => document.querySelector(sel + ' th[data-dir="desc"]') !== null""",
                           arg='[data-testid="eciBoard"]')
    assert sorted(table_sources(page)) == demo_sources
    page.locator('[data-testid="eciBoard"] th').first.click()  # "Rank": back to the ranking
    assert table_sources(page) == before
    shot(page, tmp_path / "1-leaderboard.png")

    # 2. a weight slider: β (semantic locality) 1 → −2 (Home) with the keyboard; the table changes and the order with it
    text_before = table_text(page)
    page.evaluate(STALE_WATCH)
    thumb = slider(page, "semantic locality")
    thumb.focus()
    thumb.press("Home")
    page.wait_for_function("""([sel, prev]) => {
        const t = document.querySelector(sel);
        return t && t.innerText !== prev; }""", arg=[BOARD, text_before], timeout=WAIT_MS)
    assert thumb.input_value() == "-2"  # the low end of β (negative exponents are allowed)
    wait_for_table(page, len(demo_sources))
    after = table_sources(page)
    assert sorted(after) == demo_sources and after != before
    page.wait_for_function("() => location.search.includes('b=-2')", timeout=30_000)  # written at the run's end
    stale = page.evaluate("window.__stale")  # elements the rerun had not redrawn yet: not faded (layout.CSS)
    assert {tag for tag, _, _ in stale} >= {"DIV", "SUMMARY"}, stale[:5]  # element containers and expanders
    assert all(op == "1" and set(dur.split(", ")) == {"0s"} for _, op, dur in stale), stale[:5]
    page.wait_for_function("() => window.__bars.length > 0", timeout=WAIT_MS)  # the bootstrap's progress, β = −2
    bars = page.evaluate("window.__bars")
    assert all(set(d.split(", ")) == {"0s"} for d in bars), sorted(set(bars))  # the bar does not glide
    shot(page, tmp_path / "2-leaderboard-beta-low.png")

    # 3. the share link, opened in a fresh browser context, shows the same settings and the same table
    code = page.locator('[data-testid="stPopoverBody"] [data-testid="stCode"] code').first
    for attempt in range(4):  # a rerun that lands right after the click closes the popover: wait, click again
        wait_idle(page, WAIT_MS)
        page.get_by_text("Copy share link").click()
        try:
            code.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
    link = code.inner_text().strip()
    page.locator("button.eci-copy").click()  # "Copy link" puts exactly the shown link on the clipboard
    page.get_by_text("Copied to the clipboard").wait_for(timeout=15_000)
    assert page.evaluate("navigator.clipboard.readText()") == link
    query = parse_qs(urlsplit(link).query)
    assert link.startswith(server) and query["b"] == ["-2"] and query["view"] == ["leaderboard"]
    page.keyboard.press("Escape")
    fresh = browser.new_context(viewport=VIEWPORT).new_page()
    fresh.goto(link)
    assert not close_page_not_found(fresh), "a 'Page not found' modal over a share link"
    wait_for_table(fresh, len(demo_sources))
    fresh.wait_for_function("""() => {
        const s = [...document.querySelectorAll('[data-testid="stSlider"]')]
            .find(e => e.innerText.includes('semantic locality'));
        return s && s.querySelector('input[type="range"]').value === '-2'; }""",
        timeout=WAIT_MS)
    assert table_sources(fresh) == after
    assert slider(fresh, "target consistency").input_value() == "1"
    shot(fresh, tmp_path / "3-shared-link.png")
    fresh.context.close()

    # 4. the Geometry view draws the UMAP plot
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Geometry").click()
    page.wait_for_url("**/geometry**", timeout=30_000)
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot').first.wait_for(timeout=WAIT_MS)
    page.get_by_text("unique texts laid out by UMAP").wait_for(timeout=WAIT_MS)
    assert page.locator('[data-testid="stPlotlyChart"] canvas').count() > 0  # WebGL scatter drawn
    assert "view=geometry" in page.url and "b=-2" in page.url  # settings follow the user across pages
    shot(page, tmp_path / "4-geometry.png")

    # 5. a lasso over the middle of the map lists the selected triplets
    plot = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first.bounding_box()
    cx, cy, rx, ry = (plot["x"] + plot["width"] / 2, plot["y"] + plot["height"] / 2, plot["width"] * 0.3,
                      plot["height"] * 0.3)
    page.mouse.move(cx - rx, cy - ry)
    page.mouse.down()
    for x, y in ((cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry), (cx - rx, cy - ry)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text("selected triplets").first.wait_for(timeout=WAIT_MS)
    shot(page, tmp_path / "5-geometry-selection.png")

    for name in ("1-leaderboard", "2-leaderboard-beta-low", "3-shared-link", "4-geometry", "5-geometry-selection"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    print(f"browser test: {time.monotonic() - t_start:.1f} s; screenshots in {tmp_path}")


def test_compare_two_presets_in_chromium(server, browser, tmp_path):
    """The Compare page opened from a link naming two presets shows both choices, the agreement of the two rankings
    and the table of moves."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(server + "/compare?view=compare&ca=paper&cb=weak-start")
    assert not close_page_not_found(page), "a 'Page not found' modal over the compare link"
    page.get_by_text("Kendall τ between the two rankings").wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    chosen = page.locator('[data-testid="stSelectbox"]').all_inner_texts() + [
        i.get_attribute("value") or "" for i in page.locator('[data-testid="stSelectbox"] input').all()]
    assert any("paper" in c for c in chosen) and any("weak-start" in c for c in chosen), chosen
    assert "ca=paper" in page.url and "cb=weak-start" in page.url  # the sides stay in the link
    page.get_by_text("Which terms moved each score").wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    assert page.locator('[data-testid="stDataFrame"]').count() >= 3  # the moves, the terms and the settings
    shot(page, tmp_path / "compare.png")


def test_explorer_search_row_card_and_point_in_chromium(server, browser, tmp_path):
    """Explorer in a real browser: a search narrows the table, a click on a row's box opens that triplet's card and
    rings its point on the map (a trace named "chosen row" in the plotly figure)."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(server + "/explorer?view=explorer")
    assert not close_page_not_found(page)
    search = page.get_by_label("Search queries, positives and negatives")
    search.wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    search.fill("Venus")
    search.press("Enter")
    page.get_by_text(re.compile(r"of 2,928 triplets match")).wait_for(timeout=WAIT_MS)
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stMarkdownContainer"]')]
        .some(e => /^\\d+ of 2,928 triplets match/.test(e.innerText) && !e.innerText.startsWith('2,928'))""",
                           timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.scroll_into_view_if_needed()
    grid = table.bounding_box()
    page.mouse.click(grid["x"] + 17, grid["y"] + 35 + 17)  # the first row's box (header and rows 35 px high)
    card = page.locator('[data-testid="eciExplorerCard"]').first
    card.wait_for(timeout=WAIT_MS)  # no card before a row is chosen (the page says so)
    wait_idle(page, WAIT_MS)
    assert "venus" in card.inner_text().lower()  # the card of a row that matched the search
    page.wait_for_function("""() => { const p = document.querySelector('.js-plotly-plot');
        return p && p.data && p.data.some(t => t.name === 'chosen row'); }""", timeout=WAIT_MS)
    shot(page, tmp_path / "explorer-card.png")


def test_explorer_lasso_on_the_map_filters_the_table_in_chromium(server, browser, tmp_path):
    """A lasso drawn on the Explorer's map keeps only the triplets of the points inside it in the table, the page
    says how many points are selected, and the selection travels in the link (xp)."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(server + "/explorer?view=explorer")
    assert not close_page_not_found(page)
    page.get_by_text(re.compile(r"2,928 of 2,928 triplets match")).wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    page.wait_for_function("""() => { const p = document.querySelector('.js-plotly-plot');
        return p && p.data && p.data.length > 0; }""", timeout=WAIT_MS)
    drag = page.locator(".js-plotly-plot .nsewdrag").first
    drag.scroll_into_view_if_needed()
    box = drag.bounding_box()
    x0, y0 = box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"]
    x1, y1 = box["x"] + 0.75 * box["width"], box["y"] + 0.75 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    corners = [(x1, y0), (x1, y1), (x0, y1), (x0, y0)]  # the map's drag mode is the lasso: a closed path
    at = (x0, y0)
    for cx, cy in corners:  # in steps, as a hand would: plotly draws the lasso as the pointer moves
        for k in range(1, 6):
            page.mouse.move(at[0] + (cx - at[0]) * k / 5, at[1] + (cy - at[1]) * k / 5)
        at = (cx, cy)
    page.mouse.up()
    status = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="map selection:").first
    status.wait_for(timeout=WAIT_MS)
    wait_idle(page, WAIT_MS)
    text = status.inner_text()
    m = re.search(r"([\d,]+) of 2,928 triplets match · map selection: ([\d,]+) points", text)
    assert m, text
    shown, points = (int(g.replace(",", "")) for g in m.groups())
    assert 0 < points and 0 < shown < 2928, text
    assert "xp=" in page.url  # the selection is in the address bar, so in the share link
    shot(page, tmp_path / "explorer-lasso.png")
