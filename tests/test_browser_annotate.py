"""Real browser (Chromium through Playwright) against the app server (``ecisem_core.ui.serve``): flag → select →
batch → open the batch link → annotate two items (a keyboard shortcut and a click, with a comment) → the researcher
view shows the verdicts. Screenshots of each step are saved in the test's tmp folder."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from browser_support import CHROMIUM, close_page_not_found, launch_chromium, streamlit_server, wait_idle
from ecisem_core import demo
from ecisem_core.ui.curate import ANNOTATIONS_ENV

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (./test.sh installs it)"),
]
TIMEOUT_MS = 30_000
FIRST_LOAD_MS = 180_000  # the first run loads the encoder and flags the demo
VIEWPORT = {"width": 1440, "height": 1000}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port, with a seeded embedding cache and an empty annotation store of its own."""
    tmp = tmp_path_factory.mktemp("browser_annotate")
    cache = tmp / "cache"
    demo.seed_cache(cache)
    db = tmp / "annotations.sqlite"
    env = {ANNOTATIONS_ENV: str(db), "ECISEM_CACHE_DIR": str(cache)}
    with streamlit_server(env, tmp / "streamlit.log") as url:
        yield url, db, tmp


def verdict_rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT item_id, annotator, verdict, comment FROM verdicts ORDER BY id").fetchall()
    finally:
        con.close()


def test_flag_batch_annotate_two_items_and_see_them_as_researcher(server):
    from playwright.sync_api import expect, sync_playwright

    url, db, tmp = server
    shots = []

    def shot(page, name: str, show=None) -> None:
        """Screenshot of the window, scrolled so that ``show`` (a locator) is in view."""
        if show is not None:
            show.scroll_into_view_if_needed()
        path = tmp / f"{len(shots) + 1:02d}_{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)

    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)

            # 1. the flagged list
            page.goto(url + "/false-negatives")
            wait_idle(page, FIRST_LOAD_MS)
            # the first session of a fresh server, opened on a page path: no "Page not found" modal (the page
            # files live in views/, not pages/, so Streamlit never takes its legacy pages-folder path)
            assert not close_page_not_found(page), "a 'Page not found' modal over the first page of a fresh server"
            expect(page.get_by_text(re.compile(r"likely false negatives · ranked by"))).to_be_visible()
            expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
            shot(page, "false_negatives")

            # 2. ticking two rows selects them (shown as cards); un-ticking them returns to the review queue
            def tick(row: int, then_selected: int) -> None:
                """Click a row's box (row-marker column; header and rows are 35 px high), wait for the rerun."""
                table = page.locator('[data-testid="stDataFrame"]').first
                table.scroll_into_view_if_needed()
                grid = table.bounding_box()
                page.mouse.click(grid["x"] + 17, grid["y"] + 35 + 35 * row + 17)
                expect(page.get_by_text(f"Selected rows ({then_selected})")).to_be_visible()
                wait_idle(page)

            tick(0, 1)
            tick(6, 2)
            expect(page.locator(".eci-card")).to_have_count(2)
            shot(page, "selected_rows", page.locator(".eci-card").first)
            tick(0, 1)
            tick(6, 0)
            expect(page.locator(".eci-card")).to_have_count(0)

            # 3. the top 3 of the list → a new batch
            page.get_by_role("tab", name="Send to annotation").click()
            page.locator('[data-testid="stButtonGroup"] button', has_text="Top of the list").click()  # default: queue
            wait_idle(page)
            top = page.get_by_label("How many from the top", exact=True)
            top.fill("3")
            top.press("Enter")
            send = page.get_by_role("button", name=re.compile(r"Send 3 triplet\(s\) to a new annotation batch"))
            expect(send).to_be_visible()
            wait_idle(page)
            name = page.get_by_label("Batch name", exact=True)
            name.fill("browser batch")
            name.press("Enter")
            wait_idle(page)
            send.click()
            expect(page.get_by_text("Batch #1 created with 3 triplets")).to_be_visible()
            wait_idle(page)
            link = page.locator('[data-testid="stCode"] code').first.inner_text().strip()
            assert link == f"{url}/annotate?batch=1"
            shot(page, "batch_created", page.locator('[data-testid="stCode"]').first)

            # 4. the annotator opens the link (with their name)
            page.goto(link + "&annotator=alice")
            wait_idle(page)
            card = page.locator(".eci-card").first
            expect(card).to_contain_text("item 1 of 3")
            expect(page.get_by_text("0 of 3 judged by alice")).to_be_visible()
            shot(page, "annotate_item1")

            # 5. item 1 by keyboard: F = false negative
            page.locator("h1").first.click()  # focus on the page, not in a text box
            page.keyboard.press("f")
            expect(card).to_contain_text("item 2 of 3")
            expect(page.get_by_text("1 of 3 judged by alice")).to_be_visible()
            wait_idle(page)

            # 6. item 2: a comment (letters typed in the box are text, not shortcuts), then the button
            comment = page.get_by_label("Comment (optional)", exact=True)
            comment.fill("")
            comment.type("off topic: fruit, not trees")
            comment.press("Enter")  # Enter in the box does not answer
            page.wait_for_timeout(500)
            wait_idle(page)
            expect(card).to_contain_text("item 2 of 3")
            assert len(verdict_rows(db)) == 1
            page.get_by_role("button", name=re.compile("True negative")).click()
            expect(card).to_contain_text("item 3 of 3")
            expect(page.get_by_text("2 of 3 judged by alice")).to_be_visible()
            wait_idle(page)
            shot(page, "annotate_item3")
            rows = verdict_rows(db)
            assert [(a, v, c) for _, a, v, c in rows] == [
                ("alice", "false_negative", ""), ("alice", "true_negative", "off topic: fruit, not trees")]

            # 7. the researcher view
            page.get_by_role("tab", name="Researcher view").click()
            panel = page.get_by_role("tabpanel", name="Researcher view")
            expect(panel.get_by_text("Progress per annotator")).to_be_visible()
            expect(panel.locator('[data-testid="stMetric"]').filter(has_text="Verdicts")).to_contain_text("2")
            expect(panel.locator('[data-testid="stMetric"]').filter(has_text="Flagger precision")).to_contain_text(
                "50%")
            expect(panel.get_by_text("Comments (1)")).to_be_visible()
            wait_idle(page)
            shot(page, "researcher_view")
        finally:
            browser.close()
    for path in shots:
        assert path.stat().st_size > 10_000, path
    print("screenshots:", *shots, sep="\n  ")


def test_an_annotator_link_shows_no_researcher_control_and_no_other_verdicts(server):
    """A personal link (…&annotator=bob&role=annotator) in a fresh browser: guidelines, the item, the keys and bob's
    progress — no sidebar (dataset, encoder, weights, share link), no menu, no batch picker, no researcher view, no
    other annotator's verdict or comment."""
    import pandas as pd
    from playwright.sync_api import expect, sync_playwright

    from ecisem_core.curation.annotations import AnnotationStore
    from ecisem_core.ui.curate import batch_link

    url, db, tmp = server
    store = AnnotationStore(db)
    items = pd.DataFrame({"query": ["what is a tulip", "boiling point of water"],
                          "positive": ["A tulip is a spring flower.", "Water boils at 100 °C."],
                          "negative": ["Tulips are bulbous plants.", "Paris is in France."],
                          "fn_score": [0.9, 0.2], "fn_reasons": ["relative-margin rule (s_qn 0.8 > 0.7)", ""]})
    b = store.create_batch("annotator mode", items)
    ids = store.items(b)["id"].tolist()
    store.set_guidelines(b, "Judge the passage alone, not where it came from.")
    store.record_verdict(ids[0], "carol", "fn", "carol-private-comment")
    link = batch_link(url, "annotate", b, "bob")
    assert link.endswith("&role=annotator")
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(link)
            wait_idle(page, FIRST_LOAD_MS)
            assert not close_page_not_found(page), "a 'Page not found' modal over the annotator's page"
            expect(page.locator(".eci-card").first).to_contain_text("item 1 of 2")
            expect(page.get_by_text("0 of 2 judged by bob")).to_be_visible()
            expect(page.get_by_text("Judge the passage alone, not where it came from.")).to_be_visible()
            expect(page.get_by_role("button", name=re.compile("False negative"))).to_be_visible()
            assert page.locator('[data-testid="stSidebar"]').count() == 0 or \
                not page.locator('[data-testid="stSidebar"]').is_visible()
            body = page.locator("body").inner_text()
            for hidden in ("Researcher view", "Dataset", "Encoder", "Weights", "Copy share link", "Batch",
                           "Show why it was flagged", "carol", "relative-margin", "Leaderboard"):
                assert hidden not in body, f"{hidden!r} is on the annotator's page"
            page.screenshot(path=str(tmp / "annotator_link.png"))
            page.locator("h1").first.click()
            page.keyboard.press("t")
            expect(page.get_by_text("1 of 2 judged by bob")).to_be_visible()
            wait_idle(page)
            assert ("bob", "true_negative") in [(a, v) for _, a, v, _ in verdict_rows(db)]
        finally:
            browser.close()
