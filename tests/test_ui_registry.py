"""Page registry: a page file added later shows up without editing app.py; the caches behind the pages."""
from __future__ import annotations

import threading
import time

import pytest

from ecisem_core.ui.registry import OTHER_SECTION, PAGES, available_pages, sections
from ecisem_core.ui.store import Jobs, Store, Worker

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


def _stepping_job(jobs, holder, steps, log):
    """A job of ``steps`` units that calls ``jobs.check`` between them (as data._job's progress callback does)."""
    def run():
        for i in range(steps):
            jobs.check(holder.get("future"))
            log.append(i)
            time.sleep(0.01)
        return "finished"
    return run


def _running(fut):
    for _ in range(500):
        if fut.running():
            return True
        time.sleep(0.01)
    return False


def test_a_running_job_stops_when_its_session_asks_for_other_settings():
    from ecisem_core.ui.store import Superseded

    jobs, holder, log = Jobs(), {}, []
    holder["future"] = old = jobs.submit("s1", _stepping_job(jobs, holder, 1000, log), owner="tab A")
    assert _running(old)
    new = jobs.submit("s2", lambda: "two", owner="tab A")
    assert new.result(5) == "two"  # did not wait for the 10 s of the old job
    with pytest.raises(Superseded):
        old.result(5)
    assert len(log) < 1000 and jobs.get("s1") is None and jobs.error("s2") is None
    holder2, log2 = {}, []  # coming back to the old settings starts them afresh, to the end
    holder2["future"] = again = jobs.submit("s1", _stepping_job(jobs, holder2, 5, log2), owner="tab A")
    assert again is not old and again.result(5) == "finished" and log2 == list(range(5))


def test_another_sessions_running_job_is_left_to_finish():
    jobs, holder, log = Jobs(), {}, []
    holder["future"] = first = jobs.submit("s1", _stepping_job(jobs, holder, 20, log), owner="tab A")
    assert _running(first)
    other = jobs.submit("s2", lambda: "two", owner="tab B")
    assert first.result(5) == "finished" and log == list(range(20)) and other.result(5) == "two"
    holder3, log3 = {}, []  # and without an owner (a library caller) nothing running is stopped either
    holder3["future"] = third = jobs.submit("s3", _stepping_job(jobs, holder3, 20, log3))
    assert _running(third)
    jobs.submit("s4", lambda: "four")
    assert third.result(5) == "finished"


def test_a_nearly_done_job_is_waited_for_instead_of_a_whole_poll(monkeypatch):
    """finishes_within waits for a running job whose estimated time left is shorter than the poll interval (at most
    about twice that estimate), and returns at once for one far from done, one that has not ticked yet, and one
    still queued behind another (even with a finished job's progress left over)."""
    from ecisem_core.ui import data
    from ecisem_core.ui.store import Progress

    jobs = Jobs()
    monkeypatch.setattr(data, "caches", lambda: {"uncertainty": jobs})
    gate = threading.Event()
    jobs.submit("k", lambda: gate.wait(5) and "done")
    for _ in range(500):  # the worker picks it up
        if jobs.get("k").running():
            break
        time.sleep(0.01)
    progress = Progress()
    progress.start(time.time() - 1.0)
    pending = data.Pending(None, 1.0, "k", "uncertainty", progress)
    progress.update(1, 100)  # 1 s for 1 of 100: about 99 s left
    t0 = time.perf_counter()
    assert not data.finishes_within(pending, 0.5) and time.perf_counter() - t0 < 0.1
    progress.update(0, 100)  # no tick yet: no estimate, no wait
    assert not data.finishes_within(pending, 0.5)
    queued = data.Pending(None, 1.0, "q", "uncertainty", Progress())
    queued.progress.start(time.time() - 5.0)
    queued.progress.update(100, 100)  # a stale "all done" of an earlier run of the same settings
    jobs.submit("q", lambda: "later")  # queued behind "k" (one worker)
    t0 = time.perf_counter()
    assert not data.finishes_within(queued, 0.5) and time.perf_counter() - t0 < 0.1
    progress.update(90, 100)  # about 0.11 s left: waited for (up to ~0.27 s)
    threading.Timer(0.05, gate.set).start()
    t0 = time.perf_counter()
    assert data.finishes_within(pending, 0.5) and time.perf_counter() - t0 < 0.3
    assert jobs.result_if_ready("k") == "done"
    assert not jobs.wait("unknown", 0.1)


def test_jobs_sharing_a_worker_run_one_after_the_other_in_submission_order():
    """The contributions and the bootstrap each use every core: one worker runs them in turn, never side by
    side, in the order they were asked for."""
    worker = Worker()
    first, second = Jobs(worker=worker), Jobs(worker=worker)
    running, log, lock = [], [], threading.Lock()

    def job(name: str) -> str:
        with lock:
            running.append(name)
            log.append(("start", name, len(running)))
        time.sleep(0.05)
        with lock:
            running.remove(name)
            log.append(("end", name))
        return name

    a = first.submit("k", lambda: job("contributions"))
    b = second.submit("k", lambda: job("uncertainty"))
    assert a.result(5) == "contributions" and b.result(5) == "uncertainty"
    assert log == [("start", "contributions", 1), ("end", "contributions"),
                   ("start", "uncertainty", 1), ("end", "uncertainty")]


def test_background_work_starts_at_once_for_a_sessions_first_settings_then_waits_for_them_to_settle(monkeypatch):
    from ecisem_core.ui import data

    clock = [1000.0]
    monkeypatch.setattr(data.st, "session_state", {})
    monkeypatch.setattr(data.time, "time", lambda: clock[0])
    assert data._settled(("first",))  # a page load: nothing is being dragged
    assert data._settled(("first",))
    assert not data._settled(("moved",))  # a slider moved: wait
    clock[0] += data.SETTLE_S / 2
    assert not data._settled(("moved",))
    clock[0] += data.SETTLE_S  # (exact halves would meet floating-point rounding at the boundary)
    assert data._settled(("moved",))


def test_a_result_put_by_a_page_replaces_the_queued_job_of_its_key():
    jobs = Jobs()
    gate = threading.Event()
    busy = jobs.submit("other", lambda: gate.wait(5) and "other")  # keeps the worker busy
    for _ in range(500):
        if busy.running():
            break
        time.sleep(0.01)
    queued = jobs.submit("k", lambda: "from the worker")
    jobs.put("k", "computed by the page")
    assert queued.cancelled() and jobs.result_if_ready("k") == "computed by the page"
    gate.set()
    assert busy.result(5) == "other" and jobs.result_if_ready("k") == "computed by the page"


def test_a_failed_job_reports_its_error_and_the_worker_goes_on():
    jobs = Jobs()

    def boom() -> None:
        raise ValueError("not positive definite")

    failed = jobs.submit("bad", boom)
    assert isinstance(failed.exception(5), ValueError)
    assert isinstance(jobs.error("bad"), ValueError) and jobs.error("missing") is None
    assert jobs.submit("good", lambda: 42).result(5) == 42 and jobs.error("good") is None
