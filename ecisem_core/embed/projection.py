"""2-D UMAP (umap-learn, cosine metric, fixed seed) of the queries, positives and negatives of a triplet table.

Sampling: up to ``cap`` triplets per source (the same for every source, seeded), so a large source does not
crowd out a small one. Points: one per unique query and per unique positive of the sampled triplets, and one per
sampled triplet's negative (a negative shared by two sources, e.g. a source and a hybrid built from it, is drawn
once per source at the same place). UMAP is fitted on the unique texts only.

Results are cached on disk (``<cache root>/projections/<key>.npz``, ``allow_pickle=False``) under a key made of
the data fingerprint, the encoder id, ``cap``, ``seed`` and the UMAP settings, so a second call is a file read.

    proj = project(prepared.embedded, prepared.triplets, data_key=data_fingerprint(prepared.triplets),
                   encoder_id=prepared.encoder.model_id, cap=500, seed=0)
    proj.points[["x", "y", "role", "source", "row"]]
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ecisem_core.embed.cache import default_cache_root

CAP_PER_SOURCE = 400
"""Default number of triplets drawn per source for the map (the dashboard lets the user raise it)."""
N_NEIGHBORS = 15
"""UMAP ``n_neighbors`` (capped by the number of points)."""
MIN_DIST = 0.1
"""UMAP ``min_dist``."""
N_EPOCHS = 200
"""UMAP optimisation epochs: umap-learn's own choice above 10k points (it uses 500 below, ~2.5× slower for a
2-D overview that looks the same)."""
METRIC = "cosine"
VERSION = 2
"""Bumped when the cached layout would change for the same key."""
ROLES = ("query", "positive", "negative")


@dataclass
class Projection:
    """Points (``x``, ``y``, ``role``, ``source``, ``row``, ``query_id``, ``text_index``) and how they were got.

    ``row`` is the triplet's row in the table (for queries and positives: the first sampled triplet that has
    them); ``source`` is the triplet's source for negatives and the role name for queries and positives.
    """

    points: pd.DataFrame
    n_fitted: int
    seconds: float
    from_cache: bool
    key: str


def data_fingerprint(triplets: pd.DataFrame) -> str:
    """A content hash of a triplet table (query, positive, negative, source), independent of its file."""
    cols = [c for c in ("query", "positive", "negative", "source") if c in triplets.columns]
    h = pd.util.hash_pandas_object(triplets[cols], index=False).to_numpy()
    return hashlib.sha1(h.tobytes()).hexdigest()[:20]


def sample_rows(sources: pd.Series | np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Sorted row positions: up to ``cap`` per source, drawn with ``numpy.random.default_rng(seed)``."""
    codes, names = pd.factorize(np.asarray(sources), sort=True)
    rng = np.random.default_rng(seed)
    picked = []
    for code in range(len(names)):
        rows = np.flatnonzero(codes == code)
        if rows.size > cap:
            rows = rng.choice(rows, size=cap, replace=False)
        picked.append(rows)
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def projection_points(qi: np.ndarray, pi: np.ndarray, ni: np.ndarray, triplets: pd.DataFrame,
                      rows: np.ndarray) -> pd.DataFrame:
    """The points of the sampled rows (no coordinates yet): unique queries, unique positives, every negative."""
    src = triplets["source"].to_numpy()
    qid = triplets["query_id"].to_numpy() if "query_id" in triplets.columns else qi.astype(str)
    frames = []
    for role, idx in (("query", qi), ("positive", pi)):
        text, first = np.unique(idx[rows], return_index=True)
        r = rows[first]
        frames.append(pd.DataFrame({"role": role, "source": role, "row": r, "query_id": qid[r], "text_index": text}))
    frames.append(pd.DataFrame({"role": "negative", "source": src[rows], "row": rows, "query_id": qid[rows],
                                "text_index": ni[rows]}))
    return pd.concat(frames, ignore_index=True)


def umap_2d(vectors: np.ndarray, seed: int, n_neighbors: int = N_NEIGHBORS, min_dist: float = MIN_DIST) -> np.ndarray:
    """UMAP to 2-D with the cosine metric and ``random_state=seed`` (deterministic). Fewer than 4 points are
    laid out on their first two principal axes instead (UMAP needs a neighbourhood)."""
    x = np.asarray(vectors, dtype=np.float32)
    n = x.shape[0]
    if n < 4:
        centred = x - x.mean(axis=0) if n else x
        _, _, vt = np.linalg.svd(centred, full_matrices=False) if n else (None, None, np.zeros((2, x.shape[1])))
        out = centred @ vt[:2].T if n else np.zeros((0, 2))
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1]))).astype(np.float32)
    enable_numba_cache()
    import umap

    model = umap.UMAP(n_components=2, metric=METRIC, n_neighbors=min(n_neighbors, n - 1), min_dist=min_dist,
                      n_epochs=N_EPOCHS, random_state=seed, n_jobs=1,
                      init="spectral" if n > n_neighbors + 1 else "random")
    return model.fit_transform(x).astype(np.float32)


WARM_UP_POINTS = 4200
"""Above 4,096 points UMAP finds neighbours by NN-descent: the warm-up is that large so it compiles that path."""


_numba_cache_on = False


def enable_numba_cache() -> int:
    """Keep umap-learn's and pynndescent's compiled numba code on disk across processes (and server restarts).

    Most of UMAP's first-call cost is numba compiling pynndescent's nearest-neighbour descent, whose functions are
    not declared ``cache=True``; this turns numba's on-disk cache on for every jitted function of those packages
    (``Dispatcher.enable_caching``; the files go where numba puts them, ``__pycache__`` beside the package or
    ``NUMBA_CACHE_DIR``). The compiled code is the same, so the layouts do not change. Two functions
    (``nn_descent``, ``nn_descent_internal``) cannot be cached — they use dynamic globals — and are compiled in each
    process as before. Measured (2-core machine, load ~4): :func:`warm_up` 30–37 s → 10.9 s in a second process.
    Returns how many functions were switched (0 when already done)."""
    global _numba_cache_on
    if _numba_cache_on:
        return 0
    import umap
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    warnings.filterwarnings("ignore", message="Cannot cache compiled function")
    n = 0
    roots = {umap.__name__, "pynndescent"}  # importing umap imported pynndescent: the jitted functions exist now
    for name in [m for m in sys.modules if m.split(".")[0] in roots]:
        for obj in list(vars(sys.modules[name]).values()):
            if isinstance(obj, Dispatcher) and isinstance(obj._cache, NullCache):
                obj.enable_caching()
                n += 1
    _numba_cache_on = True
    return n


def warm_up(seed: int = 0) -> float:
    """Compile umap-learn's numba code (tens of seconds the first time; mostly from numba's disk cache afterwards:
    :func:`enable_numba_cache`) on a small random set, so the first real layout does not pay for it. Returns the
    seconds spent."""
    t0 = time.perf_counter()
    x = np.random.default_rng(seed).normal(size=(WARM_UP_POINTS, 8)).astype(np.float32)
    enable_numba_cache()
    import umap

    umap.UMAP(n_components=2, metric=METRIC, n_neighbors=N_NEIGHBORS, n_epochs=5, random_state=seed,
              n_jobs=1).fit_transform(x)
    return time.perf_counter() - t0


def projection_key(data_key: str, encoder_id: str, cap: int, seed: int) -> str:
    """Cache key of one layout."""
    spec = {"data": data_key, "encoder": encoder_id, "cap": int(cap), "seed": int(seed), "metric": METRIC,
            "n_neighbors": N_NEIGHBORS, "min_dist": MIN_DIST, "n_epochs": N_EPOCHS, "version": VERSION}
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()[:24]


def _cache_file(cache_dir: str | Path | None, key: str) -> Path:
    root = Path(cache_dir) if cache_dir else default_cache_root()
    return root / "projections" / f"{key}.npz"


def _read_cached(path: Path, texts: np.ndarray) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            cached_texts, coords = z["text_index"], z["coords"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if cached_texts.shape != texts.shape or not np.array_equal(cached_texts, texts) or coords.shape != (len(texts), 2):
        return None
    if not np.isfinite(coords).all():
        return None
    return coords


def _write_cached(path: Path, texts: np.ndarray, coords: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{uuid.uuid4().hex}.tmp.npz")
    np.savez(tmp, text_index=texts, coords=coords)
    os.replace(tmp, path)


def project(embedded, triplets: pd.DataFrame, *, data_key: str, encoder_id: str, cap: int = CAP_PER_SOURCE,
            seed: int = 0, cache_dir: str | Path | None = None, use_cache: bool = True,
            layout: Callable[[np.ndarray, int], np.ndarray] = umap_2d) -> Projection:
    """UMAP layout of the sampled triplets' texts (see the module docstring); cached on disk.

    ``embedded`` is the :class:`~ecisem_core.embed.texts.Embedded` of ``triplets`` (``Prepared.embedded``): its
    ``matrix`` rows are unique texts and ``qi``/``pi``/``ni`` index them per triplet.
    """
    t0 = time.perf_counter()
    rows = sample_rows(triplets["source"], cap, seed)
    points = projection_points(embedded.qi, embedded.pi, embedded.ni, triplets, rows)
    texts = np.unique(points["text_index"].to_numpy())
    key = projection_key(data_key, encoder_id, cap, seed)
    path = _cache_file(cache_dir, key)
    coords = _read_cached(path, texts) if use_cache else None
    from_cache = coords is not None
    if coords is None:
        coords = layout(embedded.matrix[texts], seed)
        if use_cache:
            _write_cached(path, texts, coords)
    pos = np.searchsorted(texts, points["text_index"].to_numpy())
    points["x"], points["y"] = coords[pos, 0], coords[pos, 1]
    return Projection(points, int(texts.size), time.perf_counter() - t0, from_cache, key)


def query_links(points: pd.DataFrame, query_id: str) -> pd.DataFrame:
    """Segments q→p and q→n (columns x0, y0, x1, y1, kind, row) for the sampled triplets of one query."""
    cols = ["x0", "y0", "x1", "y1", "kind", "row"]
    mine = points[points["query_id"] == query_id]
    q = mine[mine["role"] == "query"]
    if q.empty:
        return pd.DataFrame(columns=cols)
    x0, y0 = float(q["x"].iloc[0]), float(q["y"].iloc[0])
    ends = mine[mine["role"] != "query"]
    return pd.DataFrame({"x0": x0, "y0": y0, "x1": ends["x"].to_numpy(), "y1": ends["y"].to_numpy(),
                         "kind": ends["role"].to_numpy(), "row": ends["row"].to_numpy()})[cols]


def selected_rows(points: pd.DataFrame, positions: list[int] | np.ndarray) -> np.ndarray:
    """Triplet rows behind selected points (positions into ``points``): a negative's own triplet; for a query or
    positive, every sampled triplet of its query. Sorted, unique."""
    sel = points.iloc[np.asarray(positions, dtype=np.int64)]
    rows = set(sel.loc[sel["role"] == "negative", "row"].tolist())
    qids = set(sel.loc[sel["role"] != "negative", "query_id"])
    if qids:
        rows |= set(points.loc[(points["role"] == "negative") & points["query_id"].isin(qids), "row"].tolist())
    return np.array(sorted(rows), dtype=np.int64)
