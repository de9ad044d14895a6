"""The dashboard's UMAP maps: the layout of a dataset's texts (in memory, then the on-disk cache of
:mod:`ecisem_core.embed.projection`), their hover labels, and UMAP's compilation in the background after start-up.
Split from :mod:`ecisem_core.ui.data`, whose caches they share."""
from __future__ import annotations

import html
import os
import threading
import time

import numpy as np
import streamlit as st

from ecisem_core.embed.projection import Projection, project, warm_up
from ecisem_core.score import Prepared
from ecisem_core.ui.data import Dataset, caches, encoder_id
from ecisem_core.ui.store import lower_priority


def _key(ds: Dataset, spec: str, cap: int, seed: int) -> tuple:
    """Key of a layout in the projection cache."""
    return (ds.key, encoder_id(spec), int(cap), int(seed))


def projection(ds: Dataset, spec: str, prep: Prepared, cap: int, seed: int) -> Projection:
    """UMAP layout (memory cache, then the on-disk cache of :mod:`ecisem_core.embed.projection`)."""
    _, enc, cap, seed = key = _key(ds, spec, cap, seed)
    return caches()["projection"].get_or_compute(
        key, lambda: project(prep.embedded, prep.triplets, data_key=ds.key, encoder_id=enc, cap=cap, seed=seed))


WARM_UP_ENV = "ECISEM_WARM_UMAP"
"""Set to 0 to skip compiling UMAP in the background after start-up (the benchmark does, to time a cold map)."""
WARM_UP_DELAY_S = 20.0
"""The warm-up waits this long after the first page so it does not compete with the first scoring."""


@st.cache_resource(show_spinner=False)
def _umap_warm_up() -> threading.Thread | None:
    if os.environ.get(WARM_UP_ENV, "1") == "0":
        return None

    def run() -> None:
        lower_priority()
        time.sleep(WARM_UP_DELAY_S)
        try:
            warm_up()
        except Exception:  # noqa: BLE001 - only an optimisation: the real layout will compile instead
            pass

    thread = threading.Thread(target=run, name="ecisem-umap-warm-up", daemon=True)
    thread.start()
    return thread


def warm_up_umap() -> None:
    """Compile UMAP once per server process, in the background, so the first Geometry visit is quick."""
    _umap_warm_up()


def projection_labels(ds: Dataset, spec: str, prep: Prepared, proj: Projection, width: int = 140) -> np.ndarray:
    """Hover text of each point of a projection: the first ``width`` characters of its text, html-escaped."""
    def build() -> np.ndarray:
        texts = prep.embedded.texts
        out = []
        for i in proj.points["text_index"].to_numpy():
            t = " ".join(str(texts[i]).split())
            out.append(html.escape(t if len(t) <= width else t[: width - 1] + "…"))
        return np.array(out, dtype=object)

    return caches()["projection"].get_or_compute(("labels", ds.key, encoder_id(spec), proj.key, width), build)


def projection_ready(ds: Dataset, spec: str, cap: int, seed: int) -> bool:
    return _key(ds, spec, cap, seed) in caches()["projection"]
