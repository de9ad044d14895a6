"""Cached data for the dashboard: datasets, prepared embeddings, scores, background uncertainty (the UMAP maps
are in :mod:`ecisem_core.ui.projections`). Pages call these; nothing here computes a metric itself (it calls
``ecisem_core``).

Caching (one set of caches per server process, shared by sessions; values are read-only):

* dataset → keyed by where it came from (file path + size + mtime, or the uploaded bytes' hash); its id for every
  later cache is a content fingerprint of the table (:func:`ecisem_core.embed.projection.data_fingerprint`);
* :func:`prepared` (embeddings, s_*, ρ, flags: the slow part) → keyed by (fingerprint, encoder id);
* :func:`scores` (a slider move: ``score_prepared(..., uncertainty=False)``) → keyed by the :class:`ScoreRequest`
  (the ScoreConfig, made once per run by :func:`request`, and the sources ranked);
* :func:`uncertainty` (bootstrap CI, P(A > B), rank stability) → a background job keyed by the same settings;
  ``None`` until it is ready, so a page never shows numbers of other settings as current.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import tempfile
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ecisem_core.config import ScoreConfig
from ecisem_core.embed.fingerprint import is_hub_name
from ecisem_core.embed.encoders import Encoder, SentenceTransformerEncoder, TfidfLsaEncoder, get_encoder
from ecisem_core.confine import confined_to
from ecisem_core.errors import InputError
from ecisem_core.embed.cache import default_cache_root
from ecisem_core.io.load import LoadReport, LoadResult, read_triplets
from ecisem_core.io.parsed_cache import read_triplets_cached
from ecisem_core.embed.projection import data_fingerprint
from ecisem_core.prepared_cache import prepare_cached
from ecisem_core.score import Prepared, ScoreResult, prepare, score_prepared
from ecisem_core.ui.paths import PROJECT_ROOT, data_root, resolve_tree_under_root, resolve_under_root
from ecisem_core.ui.state import ENCODER_DEFAULT, ENCODER_TFIDF, HUB_PREFIX, PATH_PREFIX, UPLOAD_PREFIX, ViewState
from ecisem_core.ui.store import Jobs, Progress, Store, Worker, foreground, seconds_left

DEMO_PATH = PROJECT_ROOT / "assets" / "demo" / "demo_triplets.jsonl"
"""The bundled demo dataset (built by the first-run helper). ``ECISEM_DEMO_PATH`` overrides it (tests, benchmarks)."""
DEMO_ENV = "ECISEM_DEMO_PATH"
UPLOAD_TYPES = ("jsonl", "ndjson", "json", "csv", "tsv", "parquet", "gz")
"""File types the uploader accepts (parsed by :func:`ecisem_core.io.load.read_triplets`, never executed)."""


def demo_path() -> Path:
    value = os.environ.get(DEMO_ENV)
    return Path(value) if value else DEMO_PATH


@dataclass
class Dataset:
    """A loaded triplet table and where it came from."""

    id: str            # the share-link id: "demo", "path:<rel>", "upload:<hash>"
    label: str         # shown to the user
    key: str           # content fingerprint (cache key of everything computed from it)
    table: pd.DataFrame
    report: LoadReport

    @functools.cached_property
    def sources(self) -> list[str]:
        return sorted(self.table["source"].astype(str).unique())


@st.cache_resource(show_spinner=False)
def _caches() -> dict[str, Any]:
    """One set of caches per server process."""
    worker = Worker()  # the contributions and the bootstrap one after the other: each uses every core
    return {
        "data": Store(6), "encoders": Store(4), "prepared": Store(3), "scores": Store(12), "explain": Store(24),
        "idf": Store(4), "projection": Store(6), "progress": Store(32),
        "contributions": Jobs(16, worker), "uncertainty": Jobs(16, worker),
    }


def caches() -> dict[str, Any]:
    return _caches()


# ---------------------------------------------------------------------------------------------------- datasets


PARSED_CACHE = "inputs"
"""Sub-folder of the cache root (``ECISEM_CACHE_DIR``) holding parsed input files (:mod:`ecisem_core.io.parsed_cache`)."""
PREPARED_CACHE = "prepared"
"""Sub-folder of the cache root holding prepared per-triplet terms (:mod:`ecisem_core.prepared_cache`)."""


def _dataset(res: LoadResult, ds_id: str, label: str) -> Dataset:
    return Dataset(ds_id, label, data_fingerprint(res.triplets), res.triplets, res.report)


def _read(paths: list[Path], ds_id: str, label: str) -> Dataset:
    return _dataset(read_triplets([str(p) for p in paths] if len(paths) > 1 else str(paths[0])), ds_id, label)


def load_file(path: Path, ds_id: str, label: str) -> Dataset:
    """A dataset from a file or folder (kept in memory by path, size and modification time; a file's parsed table
    is also kept on disk, by its path, bytes and the reader's code, for the next server start)."""
    st_ = path.stat()
    key = ("file", str(path), st_.st_size, st_.st_mtime_ns)
    return caches()["data"].get_or_compute(
        key, lambda: _dataset(read_triplets_cached(path, default_cache_root() / PARSED_CACHE), ds_id, label))


def load_demo() -> Dataset:
    path = demo_path()
    if not path.exists():
        raise InputError("the bundled demo dataset is not built yet (run the first-run helper), or upload a file",
                         path)
    return load_file(path, "demo", "Demo dataset")


def load_under_root(rel: str) -> Dataset:
    """A dataset from a path under the data root (refused outside it)."""
    root = data_root()
    path = resolve_under_root(rel, root)
    rel_id = path.relative_to(root).as_posix()
    with confined_to(root):  # files inside the folder (and those a state.json names) are checked as they open
        return load_file(path, PATH_PREFIX + rel_id, rel_id)


_SAFE_NAME = re.compile(r"[^\w.\-+]+")


def upload_id(files: list[tuple[str, bytes]]) -> str:
    """Content id of uploaded files (their names and bytes)."""
    h = hashlib.sha1()
    for name, data in sorted(files):
        h.update(name.encode("utf-8") + b"\0" + hashlib.sha1(data).digest())
    return h.hexdigest()[:16]


def load_upload(files: list[tuple[str, bytes]]) -> Dataset:
    """Uploaded files (name, bytes) → dataset. Written to a private temporary folder under their (sanitised)
    names — the file stem is the source name when there is no ``source`` column — and parsed by
    :func:`ecisem_core.io.load.read_triplets`; never executed or unpickled."""
    if not files:
        raise InputError("no file uploaded")
    uid = upload_id(files)

    def build() -> Dataset:
        with tempfile.TemporaryDirectory(prefix="ecisem-upload-") as tmp:
            paths = []
            for name, data in files:
                safe = _SAFE_NAME.sub("_", Path(name).name).lstrip(".") or "upload"
                p = Path(tmp) / safe
                p.write_bytes(data)
                paths.append(p)
            try:
                ds = _read(paths, UPLOAD_PREFIX + uid, ", ".join(Path(n).name for n, _ in files))
            except InputError as exc:
                # name the file as the user knows it, not the temporary path
                raise InputError(exc.problem, Path(exc.path).name if exc.path else None, exc.line) from None
        return ds

    return caches()["data"].get_or_compute(("upload", uid), build)


# ---------------------------------------------------------------------------------------------------- encoders


def hub_name(spec: str) -> str:
    """The model id of an ``hf:`` spec, checked (:func:`~ecisem_core.embed.fingerprint.is_hub_name`)."""
    name = spec[len(HUB_PREFIX):].strip()
    if not is_hub_name(name):
        raise InputError(f"{name!r} is not a model name: use org/name as on the Hugging Face hub (letters, digits, "
                         "_ . -), for a model already in this machine's Hugging Face cache")
    return name


def encoder_id(spec: str) -> str:
    """Stable id of an encoder spec (for cache keys); a local path is resolved under the data root."""
    if spec.startswith(PATH_PREFIX):
        return PATH_PREFIX + str(resolve_under_root(spec[len(PATH_PREFIX):]))
    if spec.startswith(HUB_PREFIX):
        return HUB_PREFIX + hub_name(spec)
    return spec


def make_encoder(spec: str) -> Encoder:
    """The encoder of a spec: the offline default, TF-IDF/LSA (a fresh one: it is fitted per dataset) or a
    sentence-transformers model folder under the data root. Model-backed encoders are shared (loaded once)."""
    if spec == ENCODER_TFIDF:
        return TfidfLsaEncoder()
    if spec.startswith(PATH_PREFIX):
        root = data_root()
        path = resolve_tree_under_root(spec[len(PATH_PREFIX):], root)
        if not path.is_dir():
            raise InputError("a local encoder must be a sentence-transformers model folder", path)
        with confined_to(root):  # the encoder keeps the root and checks its files again before it loads them
            return caches()["encoders"].get_or_compute(("path", str(path)),
                                                       lambda: SentenceTransformerEncoder(str(path)))
    if spec.startswith(HUB_PREFIX):  # offline: from the local Hugging Face cache only (HF_HUB_OFFLINE=1)
        name = hub_name(spec)
        return caches()["encoders"].get_or_compute(("hub", name), lambda: SentenceTransformerEncoder(name, root=None))
    if spec != ENCODER_DEFAULT:
        raise InputError(f"unknown encoder {spec!r}")
    return caches()["encoders"].get_or_compute("default", lambda: get_encoder(None))


# ---------------------------------------------------------------------------------------------------- scoring


def prepared_key(ds: Dataset, spec: str) -> tuple[str, str]:
    return (ds.key, encoder_id(spec))


def prepared(ds: Dataset, spec: str) -> Prepared:
    """Embeddings and per-triplet terms of a dataset for an encoder (slow once, then cached in memory, and — for the
    demo and files or folders under the data root, not uploads — on disk for the next server start:
    :mod:`ecisem_core.prepared_cache`). Shows a progress bar while encoding."""
    key = prepared_key(ds, spec)
    store = caches()["prepared"]
    hit = store.peek(key)
    if hit is not None:
        return hit
    box = st.empty()

    def compute() -> Prepared:
        with box.container():
            bar = st.progress(0.0, text="Embedding texts (once per dataset and encoder; cached on disk)…")

            def progress(done: int, total: int) -> None:
                bar.progress(min(done / max(total, 1), 1.0), text=f"Embedding texts: {done:,} / {total:,}")

            t0 = time.perf_counter()
            if ds.id.startswith(UPLOAD_PREFIX):  # as its parsed table, an upload's terms (its vocabulary) stay off disk
                prep = prepare(ds.table, make_encoder(spec), progress=progress)
            else:
                prep = prepare_cached(ds.table, make_encoder(spec), default_cache_root() / PREPARED_CACHE,
                                      progress=progress)
            bar.progress(1.0, text=f"Prepared {len(ds.table):,} triplets in {time.perf_counter() - t0:.1f} s")
        return prep

    try:
        return store.get_or_compute(key, compute)
    finally:
        box.empty()


@dataclass(frozen=True)
class ScoreRequest:
    """What scores depend on besides the dataset and encoder: the :class:`ScoreConfig` and the sources ranked
    (``None`` = all). Hashable: with :func:`prepared_key` it keys every score cache and background job."""

    config: ScoreConfig
    sources: tuple[str, ...] | None = None

    @property
    def source_list(self) -> list[str] | None:
        return list(self.sources) if self.sources else None


def request(view: ViewState, ds: Dataset, dim: int) -> ScoreRequest:
    """The request of a view: its ScoreConfig for dimension ``dim`` (made here, once per run) and the chosen
    sources that are in the dataset (``None`` when none or all are chosen)."""
    chosen = tuple(s for s in view.sources if s in set(ds.sources))
    return ScoreRequest(view.config_for(dim), chosen or None)


def scores_key(ds: Dataset, spec: str, req: ScoreRequest) -> tuple:
    return (*prepared_key(ds, spec), req)


def scores(ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared) -> ScoreResult:
    """Scores for the current sliders: ECI_sem, info, diversity, classic ECI, counts, FN rate (the instant path:
    one log-det per source; no Shapley contributions, no uncertainty)."""
    def compute() -> ScoreResult:
        with foreground:  # a running bootstrap waits meanwhile
            return score_prepared(prep, req.config, uncertainty=False, contributions=False, sources=req.source_list)

    return caches()["scores"].get_or_compute(scores_key(ds, spec, req), compute)


@dataclass
class Pending:
    """A background result: ``value`` when ready for exactly these settings, else ``None``."""

    value: ScoreResult | None
    seconds: float
    key: tuple
    kind: str
    progress: Progress | None = None
    error: str | None = None  # the job failed: what went wrong (never raised into the page)


SETTLE_S = 0.8
"""Background jobs for changed settings start only once the settings have stayed the same this long, so a user
dragging a slider back and forth does not queue CPU-heavy work behind each move. The first settings a session
sees (a page load, a share link) start at once: nothing is being dragged yet."""
_SINCE = "_ecisem_settings_since"


def _settled(key: tuple) -> bool:
    """Whether this session's settings have been ``key`` for at least :data:`SETTLE_S` seconds, or ``key`` is the
    first settings this session has seen."""
    now = time.time()
    since = st.session_state.get(_SINCE)
    if since is None:
        st.session_state[_SINCE] = (key, -math.inf)  # settled already
        return True
    if since[0] != key:
        st.session_state[_SINCE] = (key, now)
        return False
    return now - since[1] >= SETTLE_S


def _job(kind: str, ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared, *, force: bool = False,
         **kw: Any) -> Pending:
    key = scores_key(ds, spec, req)
    jobs: Jobs = caches()[kind]
    progress: Progress = caches()["progress"].get_or_compute((kind, key), Progress)

    mine: dict[str, Future] = {}

    def tick(done: int, total: int) -> None:  # after each log-det: the moment to let a slider's scores go first
        foreground.pause_point()
        jobs.check(mine.get("future"))  # this session moved on to other settings: stop here
        progress.update(done, total)

    def run() -> ScoreResult:
        progress.start()
        return score_prepared(prep, req.config, sources=req.source_list, progress=tick, **kw)

    if jobs.get(key) is None and (force or _settled(key)):
        progress.reset()  # the same settings may come back after their job was dropped: start the bar afresh
        mine["future"] = jobs.submit(key, run, owner=_session())
    started = jobs.started(key) or time.time()
    failed = jobs.error(key)
    if failed is not None:
        return Pending(None, time.time() - started, key, kind, progress, f"{type(failed).__name__}: {failed}")
    return Pending(jobs.result_if_ready(key), time.time() - started, key, kind, progress)


def _session() -> str | None:
    """This browser session's id (``None`` outside a Streamlit run): the owner of the jobs it submits."""
    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def finishes_within(p: Pending, seconds: float) -> bool:
    """Whether the running background job of ``p`` ended within ``seconds``, waited for here when its estimated
    time left (:func:`~ecisem_core.ui.store.seconds_left`) is shorter than that: the page then shows its result at
    once instead of at the next poll (on average half a poll interval sooner). False at once otherwise."""
    progress = p.progress
    if p.value is not None or p.error or progress is None or progress.running_since is None:
        return False
    done, total = progress.snapshot()
    left = seconds_left(done, total, time.time() - progress.running_since)
    if left is None or left > seconds:
        return False
    return caches()[p.kind].wait(p.key, min(seconds, 2.0 * left + 0.05))  # an estimate can be off: bounded by it


def contributions(ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared, *, wait: bool = False) -> Pending:
    """Exact Shapley contributions φ_c, φ_h, φ_ρ, φ_div per source (8 log-dets per source), on a background
    thread so a slider never waits for them. ``wait``: the result now — the running job's, or computed in this
    thread (a fraction of a second) rather than queued behind a bootstrap, and kept for the other pages."""
    if not wait:
        return _job("contributions", ds, spec, req, prep, uncertainty=False, contributions=True)
    key, jobs = scores_key(ds, spec, req), caches()["contributions"]
    value = jobs.result_if_ready(key)
    running = jobs.get(key)
    if value is None and running is not None and running.running():
        value = running.result()  # a running job cannot be cancelled any more
    if value is None:
        value = score_prepared(prep, req.config, sources=req.source_list, uncertainty=False, contributions=True)
        jobs.put(key, value)
    return Pending(value, 0.0, key, "contributions")


def uncertainty(ds: Dataset, spec: str, req: ScoreRequest, prep: Prepared) -> Pending:
    """Bootstrap 95% CI, P(A > B) and rank stability for the current settings (background thread, started once
    the settings have settled)."""
    return _job("uncertainty", ds, spec, req, prep, uncertainty=True, contributions=False)


def uncertainty_ready(ds: Dataset, spec: str, req: ScoreRequest) -> ScoreResult | None:
    """The finished uncertainty result for exactly these settings, without starting anything (``None`` also when
    the job failed: :func:`uncertainty` says why)."""
    jobs, key = caches()["uncertainty"], scores_key(ds, spec, req)
    return None if jobs.error(key) is not None else jobs.result_if_ready(key)


def row_values(prep: Prepared, result: ScoreResult, columns: list[str]) -> pd.DataFrame:
    """``result.triplets[columns]`` re-aligned to the prepared table's rows (NaN for unselected sources)."""
    keep = prep.triplets["source"].isin(set(result.sources["source"])).to_numpy()
    out = pd.DataFrame(np.nan, index=pd.RangeIndex(len(prep.triplets)), columns=columns, dtype=float)
    out.loc[keep, columns] = result.triplets[columns].to_numpy(dtype=float)
    return out
