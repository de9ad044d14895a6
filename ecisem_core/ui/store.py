"""In-process caches for the dashboard (no Streamlit import; ``data.py`` keeps one of each per server process
with ``st.cache_resource``).

* :class:`Store` — a thread-safe LRU of computed values with one lock per key, so two sessions asking for the same
  slow value (embeddings of a dataset) compute it once. Values are shared, never copied: treat them as read-only.
* :class:`Jobs` — slow results computed on a background thread (bootstrap intervals, P(A > B), rank stability),
  so a slider is never blocked by them. A job is identified by its key (the settings it depends on); submitting a
  new key cancels queued jobs that have not started, and a page shows a result only when its key is the current
  one — never stale numbers as current.
"""
from __future__ import annotations

import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import Any


class Store:
    """LRU of ``key → value`` with at most ``max_items`` entries."""

    def __init__(self, max_items: int = 8) -> None:
        self.max_items = max_items
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.hits = 0
        self.misses = 0

    def peek(self, key: Hashable) -> Any | None:
        with self._guard:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def __contains__(self, key: Hashable) -> bool:
        with self._guard:
            return key in self._items

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The stored value, or ``compute()`` stored (concurrent callers for one key wait for one computation)."""
        with self._guard:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._items:
                    self.hits += 1
                    return self._items[key]
            self.misses += 1
            value = compute()
            with self._guard:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.max_items:
                    old, _ = self._items.popitem(last=False)
                    self._locks.pop(old, None)
            return value

    def clear(self) -> None:
        with self._guard:
            self._items.clear()
            self._locks.clear()


BACKGROUND_NICE = 10
"""Niceness added to job threads (Linux: per thread, inherited by the threads they start), so the interactive
path keeps the CPU when a bootstrap is running."""


FOREGROUND_MAX_WAIT_S = 10.0
"""Longest a background job waits for the interactive work in one go (a safety net: that work takes ~0.1 s)."""


class Foreground:
    """Interactive work in progress (a slider's instant scores): while any runs, the bootstrap job waits between two
    of its log-dets (:meth:`pause_point`, called by its progress callback), so the slider path has every core to
    itself (the contributions job, a fraction of a second, reports no progress and does not wait). Lowering its
    priority (:data:`BACKGROUND_NICE`) was not enough: the bootstrap's two threads still took part of the cores, the caches
    and the GIL, and a slider's scores took 65–78 ms in the app against 40 ms alone. Counted, so several sessions
    may be in the foreground at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._idle = threading.Event()
        self._idle.set()

    def __enter__(self) -> Foreground:
        with self._lock:
            self._active += 1
            self._idle.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    def pause_point(self, timeout: float = FOREGROUND_MAX_WAIT_S) -> None:
        """Return at once when no interactive work runs, else when it ends (or after ``timeout`` seconds). Never
        call it from the interactive work itself."""
        self._idle.wait(timeout)


foreground = Foreground()
"""The process's one :class:`Foreground`."""


class Progress:
    """Units done out of a total for one background job, and when it began to run (not when it was queued):
    what the dashboard's progress bar and its estimate of the time left read. ``update`` is called from worker
    threads; a read sees one consistent ``(done, total)`` pair."""

    def __init__(self) -> None:
        self._pair: tuple[int, int] = (0, 0)
        self.running_since: float | None = None

    def start(self, now: float | None = None) -> None:
        """The job begins to run: no unit done yet."""
        self._pair = (0, 0)
        self.running_since = time.time() if now is None else now

    def reset(self) -> None:
        """The job is (re)queued: not running, nothing done (a finished job's progress is not carried over)."""
        self._pair = (0, 0)
        self.running_since = None

    def update(self, done: int, total: int) -> None:
        self._pair = (int(done), int(total))

    def snapshot(self) -> tuple[int, int]:
        return self._pair


def seconds_left(done: int, total: int, elapsed: float) -> float | None:
    """Linear estimate of the time a job still needs: ``elapsed · (total − done) / done`` (the units are log-dets
    of equal size); ``None`` before the first unit is done or without a total."""
    if done <= 0 or total <= 0:
        return None
    return max(float(elapsed) * (total - min(done, total)) / done, 0.0)


def duration(seconds: float) -> str:
    """``seconds`` rounded for a person: "8 s", "2 min 5 s"."""
    s = max(int(round(seconds)), 1)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60} s"


def progress_line(progress: Progress, what: str, now: float | None = None) -> tuple[float, str]:
    """The bar's fraction and its text for a background job: queued, starting, or ``done of total`` with the time
    left estimated by :func:`seconds_left`."""
    if progress.running_since is None:
        return 0.0, f"{what}: queued (it starts once the settings stay put)"
    done, total = progress.snapshot()
    if total <= 0 or done <= 0:
        return 0.0, f"{what}: starting"
    elapsed = (time.time() if now is None else now) - progress.running_since
    left = seconds_left(done, total, elapsed)
    return min(done / total, 1.0), f"{what}: {done:,} of {total:,} log-dets, about {duration(left or 0)} left"


def lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux; a no-op elsewhere)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError, PermissionError):
        pass


class Worker:
    """One low-priority daemon thread that runs queued jobs in order (a server or a test run that ends does not
    wait for a bootstrap nobody will read). Several :class:`Jobs` may share one: each job already uses every core
    (``parallel.map_sources``), so two jobs side by side only slow each other down — on the 100k benchmark set
    the contributions and the bootstrap run one after the other finish sooner than side by side."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Future, Callable[[], Any]]] = queue.SimpleQueue()
        threading.Thread(target=self._work, name="ecisem-job", daemon=True).start()

    def put(self, fut: Future, fn: Callable[[], Any]) -> None:
        self._queue.put((fut, fn))

    def _work(self) -> None:
        lower_priority()
        while True:
            fut, fn = self._queue.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the result
                fut.set_exception(exc)


class Superseded(Exception):
    """Raised inside a running job (at its next :meth:`Jobs.check`) once the same owner asked for other settings."""


class Jobs:
    """Background computations keyed by what they depend on, run by a :class:`Worker` (its own unless one is
    given); queued jobs for other keys are dropped when a new key is submitted, and a running one is stopped at its
    next :meth:`check` when the new key comes from the same owner (a browser session)."""

    def __init__(self, max_items: int = 16, worker: Worker | None = None) -> None:
        self.max_items = max_items
        self._futures: OrderedDict[Hashable, Future] = OrderedDict()
        self._started: dict[Hashable, float] = {}
        self._owners: dict[Hashable, Hashable] = {}
        self._stopped: set[Future] = set()
        self._worker = worker or Worker()
        self._guard = threading.Lock()

    def check(self, fut: Future | None) -> None:
        """Called by a running job (``fut``: the future :meth:`submit` returned for it; ``None``: not known yet,
        a no-op) between two units of work: raises :class:`Superseded` when its owner has submitted other settings
        since. A bootstrap of a negative exponent at 100k triplets (the float64 QR path)
        runs for about a minute; without this, a user who dragged through such a value waited that long for the
        intervals of where they let go."""
        if fut is not None and fut in self._stopped:  # every worker thread of the job stops at its next unit
            raise Superseded()

    def submit(self, key: Hashable, fn: Callable[[], Any], owner: Hashable | None = None) -> Future:
        """The future of ``key`` (queued now if new). Queued jobs for other keys are cancelled: only the latest
        settings matter. A running job of another key with the same ``owner`` (not ``None``) is stopped at its
        next :meth:`check` and forgotten, so coming back to its settings starts it afresh; other owners' running
        jobs finish (two tabs at different settings must not stop each other in turn)."""
        with self._guard:
            fut = self._futures.get(key)
            if fut is not None and not fut.cancelled():
                self._futures.move_to_end(key)
                return fut
            self._stopped = {f for f in self._stopped if not f.done()}
            for other, f in list(self._futures.items()):
                if other == key or f.done():
                    continue
                if f.cancel():
                    del self._futures[other]
                    self._owners.pop(other, None)
                elif owner is not None and self._owners.get(other) == owner:
                    self._stopped.add(f)
                    del self._futures[other]
                    self._owners.pop(other, None)
            fut = Future()
            self._futures[key] = fut
            self._started[key] = time.time()
            self._owners[key] = owner
            self._worker.put(fut, fn)
            done = [k for k, f in self._futures.items() if f.done()]
            while len(self._futures) > self.max_items and done:
                k = done.pop(0)
                self._futures.pop(k, None)
                self._started.pop(k, None)
                self._owners.pop(k, None)
            return fut

    def put(self, key: Hashable, value: Any) -> None:
        """Record a result computed outside the worker (by a page that could not wait in the queue) as the finished
        job of ``key``; a queued job for ``key`` is cancelled (one already running finishes unread)."""
        fut: Future = Future()
        fut.set_result(value)
        with self._guard:
            old = self._futures.get(key)
            if old is not None and not old.done():
                old.cancel()
            self._futures[key] = fut
            self._futures.move_to_end(key)
            self._started[key] = time.time()

    def get(self, key: Hashable) -> Future | None:
        with self._guard:
            return self._futures.get(key)

    def started(self, key: Hashable) -> float | None:
        """Wall-clock time the job of ``key`` was submitted."""
        with self._guard:
            return self._started.get(key)

    def _finished(self, key: Hashable) -> Future | None:
        """The future of ``key`` if its job ran to the end (with a result or an error)."""
        fut = self.get(key)
        return fut if fut is not None and fut.done() and not fut.cancelled() else None

    def result_if_ready(self, key: Hashable) -> Any | None:
        """The job's result when it finished without error, else ``None`` (raises the job's error if it failed)."""
        fut = self._finished(key)
        return None if fut is None else fut.result()

    def wait(self, key: Hashable, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the *running* job of ``key`` to end (with a result or an error); whether
        it did. A job still queued is not waited for."""
        fut = self.get(key)
        if fut is None or fut.cancelled() or not (fut.running() or fut.done()):
            return False
        done, _ = wait_futures([fut], timeout=max(timeout, 0.0))
        return bool(done) and not fut.cancelled()

    def error(self, key: Hashable) -> BaseException | None:
        """The error the job of ``key`` failed with, if it did."""
        fut = self._finished(key)
        return None if fut is None else fut.exception()
