"""Worker threads for the per-source work (docs/METRIC.md §2.4): one thread per core, each with single-threaded
BLAS under one process-wide limit, tasks split into contiguous parts, and a thread-safe counter of finished
log-dets for progress bars. No metric here: :mod:`ecisem_core.metric.uncertainty` and :mod:`ecisem_core.score`
hand their work to :func:`map_sources`."""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import OpenBLASController, ThreadpoolController


class Ticker:
    """Counts finished units of work (one log-det each) from any thread and reports ``(done, total)`` to a
    callback: the dashboard's progress bar and its estimate of the time left. ``None`` as the callback: no cost."""

    def __init__(self, total: int, report: Callable[[int, int], None] | None = None) -> None:
        self.total, self.done, self._report, self._lock = int(total), 0, report, threading.Lock()

    def tick(self, n: int = 1) -> None:
        if self._report is None:
            return
        with self._lock:  # reported under the lock, so a reader never sees the count go back
            self.done += int(n)
            self._report(self.done, self.total)


def _ticked(ticker: Ticker | None, value: float) -> float:
    """``value``, after one tick of ``ticker`` (a log-det finished)."""
    if ticker is not None:
        ticker.tick()
    return value


def split_draws(large: list[int], n: int, parts: int | None = None) -> list[tuple[int, range]]:
    """(source, draws) tasks for the worker threads: each source's ``n`` draws in ``parts`` contiguous blocks (one
    per core by default), so that a single large source still uses every core. Every draw is computed on its own,
    so the values do not depend on the split.

    >>> split_draws([3, 5], 5, parts=2)
    [(3, range(0, 3)), (3, range(3, 5)), (5, range(0, 3)), (5, range(3, 5))]
    """
    parts = parts or os.cpu_count() or 1
    step = -(-n // max(1, min(n, parts))) if n else 1
    return [(j, range(a, min(a + step, n))) for j in large for a in range(0, n, step)]


@functools.cache
def _blas() -> ThreadpoolController:
    """One scan of the loaded BLAS libraries per process (a scan costs about 1 ms, once per call before)."""
    return ThreadpoolController()


class SharedBlasLimit:
    """Single-threaded BLAS while any caller is inside, the previous limits back when the last one leaves.

    BLAS thread limits are process-wide, and threadpoolctl (≥ 3.7) lets only one "controlling" thread change an
    OpenBLAS limit, silently ignoring the others until that thread leaves a ``with`` block. In the dashboard the
    slider path and two background jobs each entered their own ``limit()`` block: one job's limit was ignored or
    lifted by another thread leaving, its worker threads ran threaded BLAS from two threads at once on two cores,
    and the bootstrap of the 100k benchmark set took 6.6–12.9 s in the server against 3.7 s in a script. Here
    the callers are counted under one lock; the first to enter sets the limit and the last to leave restores
    it, each taking control of OpenBLAS first (``clear_controlling_thread(force=True)``).

    Limits: this assumes the process-wide thread pool of a pthreads BLAS, which is what the pinned numpy and scipy
    wheels carry (threadpoolctl reports ``threading_layer: pthreads``). With an OpenMP-threaded BLAS the limit is
    per thread, and only the thread that enters first would be limited. Taking control also overrides a
    ``threadpool_limits`` block that other code holds at the same moment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter = None

    def __enter__(self) -> SharedBlasLimit:
        with self._lock:
            if self._users == 0:
                _take_control()
                self._limiter = _blas().limit(limits=1, user_api="blas")
            self._users += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                _take_control()
                self._limiter.restore_original_limits()
                self._limiter = None
                _take_control()  # leave no thread in control, as a ``with threadpool_limits`` block would


def _take_control() -> None:
    """Let the calling thread change OpenBLAS's limits (see :class:`SharedBlasLimit`)."""
    clear = getattr(OpenBLASController, "clear_controlling_thread", None)  # threadpoolctl ≥ 3.7
    if clear is not None:
        clear(force=True)


single_threaded_blas = SharedBlasLimit()
"""The process's one :class:`SharedBlasLimit` (``with single_threaded_blas: …``)."""


def map_sources(fn: Callable[[int], np.ndarray], n: int) -> list[np.ndarray]:
    """[fn(0), …, fn(n−1)] on up to ``os.cpu_count()`` threads, each with single-threaded BLAS.

    Many small matrix products are faster as one product per core than as threaded BLAS inside each product,
    and threaded BLAS collapses when the cores are busy (measured 10–20× slower on a loaded 2-core machine).
    """
    workers = max(1, min(n, os.cpu_count() or 1))
    with single_threaded_blas:
        if workers == 1:
            return [fn(j) for j in range(n)]
        # a few contiguous blocks per worker, not one task per source: 10,000 tiny sources as 10,000 tasks spent
        # most of their time in the pool's locks
        blocks = [range(a, min(a + -(-n // (4 * workers)), n)) for a in range(0, n, -(-n // (4 * workers)))]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return [x for part in pool.map(lambda r: [fn(j) for j in r], blocks) for x in part]
