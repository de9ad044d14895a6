"""Page registry: a page file added later shows up without editing app.py; the caches behind the pages."""
from __future__ import annotations

import threading
import time

from ecisem_core.ui.registry import OTHER_SECTION, PAGES, available_pages, sections
from ecisem_core.ui.store import Jobs, Store

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_only_existing_pages_in_registry_order(tmp_path):
    (tmp_path / "views").mkdir()
    for f in ("geometry.py", "leaderboard.py"):
        (tmp_path / "views" / f).write_text("")
    assert [p.title for p in available_pages(tmp_path)] == ["Leaderboard", "Geometry"]
    (tmp_path / "views" / "validate.py").write_text("")  # another developer adds a page later
    (tmp_path / "views" / "false_negatives.py").write_text("")
    got = available_pages(tmp_path)
    assert [p.title for p in got] == ["Leaderboard", "Geometry", "False negatives", "Validate"]
    assert list(sections(got)) == ["Explore", "Curate", "Check"]


def test_unregistered_page_goes_to_other(tmp_path):
    (tmp_path / "views").mkdir()
    (tmp_path / "views" / "my_extra_view.py").write_text("")
    (tmp_path / "views" / "_helper.py").write_text("")
    got = available_pages(tmp_path)
    assert [(p.title, p.url_path, p.section) for p in got] == [("My extra view", "my-extra-view", OTHER_SECTION)]


def test_the_project_has_the_three_explore_pages():
    titles = [p.title for p in available_pages(ROOT)]
    assert titles[:3] == ["Leaderboard", "Why this rank", "Geometry"]
    assert len({p.url_path for p in PAGES}) == len(PAGES)


def test_store_computes_once_under_concurrency():
    store = Store(max_items=2)
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return 42

    threads = [threading.Thread(target=lambda: store.get_or_compute("k", slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and store.peek("k") == 42
    store.get_or_compute("a", lambda: 1)
    store.get_or_compute("b", lambda: 2)
    assert "k" not in store and "a" in store and "b" in store  # LRU evicted the oldest


def test_jobs_drop_queued_work_for_old_settings():
    jobs = Jobs()
    gate = threading.Event()
    first = jobs.submit("s1", lambda: gate.wait(5) and "one")
    for _ in range(500):  # the worker picks it up
        if first.running():
            break
        time.sleep(0.01)
    queued = jobs.submit("s2", lambda: "two")
    latest = jobs.submit("s3", lambda: "three")
    assert queued.cancelled() and jobs.get("s2") is None  # never ran: its settings are gone
    assert jobs.submit("s3", lambda: "again") is latest  # same key: same job
    assert jobs.result_if_ready("s3") is None
    gate.set()
    assert first.result(5) == "one" and latest.result(5) == "three"
    assert jobs.result_if_ready("s3") == "three"
