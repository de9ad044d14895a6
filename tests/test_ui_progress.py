"""The dashboard's progress bar for background jobs: the time-left estimate and the bar's text (hand-checked)."""
from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, strategies as st

from ecisem_core.ui.store import Progress, duration, progress_line, seconds_left


def test_seconds_left_is_linear_in_the_units_still_to_do():
    assert seconds_left(25, 100, 10.0) == pytest.approx(30.0)  # 10 s for 25 → 30 s for the other 75
    assert seconds_left(100, 100, 42.0) == 0.0
    assert seconds_left(0, 100, 5.0) is None and seconds_left(3, 0, 5.0) is None
    assert seconds_left(120, 100, 5.0) == 0.0  # more ticks than announced never gives a negative time


@given(st.integers(1, 10_000), st.integers(1, 10_000), st.floats(0, 1e4))
def test_seconds_left_never_negative_and_falls_as_work_is_done(done, total, elapsed):
    left = seconds_left(done, total, elapsed)
    assert left is not None and left >= 0
    if done < total:
        assert seconds_left(done + 1, total, elapsed) <= left


def test_duration_reads_as_seconds_then_minutes():
    assert [duration(x) for x in (0.2, 8.4, 59.6, 125)] == ["1 s", "8 s", "1 min 0 s", "2 min 5 s"]


def test_progress_line_queued_starting_and_counting():
    p = Progress()
    assert progress_line(p, "Intervals") == (0.0, "Intervals: queued (it starts once the settings stay put)")
    p.start(now=100.0)
    assert progress_line(p, "Intervals", now=101.0) == (0.0, "Intervals: starting")
    p.update(1_500, 6_000)
    fraction, text = progress_line(p, "Intervals", now=106.0)  # 6 s for a quarter → 18 s left
    assert fraction == pytest.approx(0.25)
    assert text == "Intervals: 1,500 of 6,000 log-dets, about 18 s left"


def test_progress_updates_from_many_threads_read_as_one_pair():
    p = Progress()
    threads = [threading.Thread(target=lambda i=i: [p.update(j, 1000 + i) for j in range(500)]) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done, total = p.snapshot()
    assert done == 499 and 1000 <= total <= 1003


def test_background_work_pauses_while_interactive_work_runs():
    from ecisem_core.ui.store import Foreground

    gate = Foreground()
    t0 = time.perf_counter()
    gate.pause_point()  # nothing interactive: no wait
    assert time.perf_counter() - t0 < 0.05
    done = threading.Event()

    def background() -> None:
        gate.pause_point()
        done.set()

    with gate:
        with gate:  # two sessions at once: the gate opens when both are out
            worker = threading.Thread(target=background)
            worker.start()
            assert not done.wait(0.2)  # held while a slider's scores are computed
        assert not done.wait(0.1)
    assert done.wait(2.0)  # released at once when the last one leaves
    worker.join()
    t0 = time.perf_counter()
    with gate:
        gate.pause_point(timeout=0.1)  # the safety net: never stuck for good
    assert 0.09 <= time.perf_counter() - t0 < 1.0


def test_a_requeued_job_starts_its_bar_afresh():
    p = Progress()
    p.start(100.0)
    p.update(250, 250)
    p.reset()
    assert p.running_since is None and p.snapshot() == (0, 0)
    p.update(7, 250)
    p.start(200.0)  # a job that begins to run has done nothing yet
    assert p.snapshot() == (0, 0) and p.running_since == 200.0
