"""The settings sidebar shown on every page, the URL sync and the share link.

``app.py`` calls :func:`start` before the page runs (reads the URL once per session, draws the sidebar, loads
the dataset) and :func:`finish` after it (writes the settings back into the URL and fills the share link), so
page-specific settings chosen during the page's run are in the link too.
"""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from ecisem_core.config import SAMPLE_SIZE
from ecisem_core.errors import InputError
from ecisem_core.ui import data, share
from ecisem_core.ui.paths import data_root
from ecisem_core.ui.state import (DATASET_DEMO, KAPPA_D_DEFAULT, KAPPA_D_OPTIONS, PATH_PREFIX, RANGES, STEPS, UPLOAD_PREFIX, K,
                    Settings, settings_from_state, settings_to_state)

CONTEXT = "_ecisem_context"
MODE_LABELS = {"demo": "Demo", "upload": "Upload", "path": "Path"}
ENCODER_LABELS = {"default": "MiniLM (default)", "tfidf": "TF-IDF / LSA", "path": "Local model"}


@dataclass
class Context:
    """What a page needs: the settings, the loaded dataset (or why there is none) and the encoder spec."""

    settings: Settings
    dataset: data.Dataset | None
    error: str | None
    encoder: str
    encoder_error: str | None


def _init_from_url() -> None:
    """Once per session: settings from the URL query string into session state."""
    if st.session_state.get(K.INITIALISED):
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    settings, notes = share.decode(params)
    settings_to_state(settings, st.session_state)
    st.session_state[K.NOTICES] = notes
    st.session_state[K.INITIALISED] = True


def _load_dataset(mode: str) -> tuple[data.Dataset | None, str | None]:
    try:
        if mode == "demo":
            return data.load_demo(), None
        if mode == "path":
            rel = (st.session_state.get(K.DS_PATH) or "").strip()
            if not rel:
                return None, None
            return data.load_under_root(rel), None
        files = st.session_state.get(K.DS_UPLOAD) or []
        if not files:
            return None, None
        return data.load_upload([(f.name, f.getvalue()) for f in files]), None
    except InputError as exc:
        return None, str(exc) if exc.path else exc.problem


def _dataset_section() -> tuple[data.Dataset | None, str | None]:
    st.segmented_control("Dataset", list(MODE_LABELS), format_func=MODE_LABELS.get, key=K.DS_MODE,
                         required=True, width="stretch",
                         help="The bundled demo, files you upload (parsed, never executed), or a path under "
                              "the data root.")
    mode = st.session_state.get(K.DS_MODE) or "demo"
    wanted = st.session_state.get(K.DATASET, DATASET_DEMO)
    if mode == "upload":
        st.file_uploader("Triplet files (one per source, or with a `source` column)", type=list(data.UPLOAD_TYPES),
                         accept_multiple_files=True, key=K.DS_UPLOAD,
                         help="JSONL, CSV, TSV, Parquet (also .gz). Columns query, positive, negative, source — "
                              "see the README for aliases and other formats.")
        if wanted.startswith(UPLOAD_PREFIX) and not st.session_state.get(K.DS_UPLOAD):
            st.info(f"The link refers to an uploaded dataset ({wanted}). Upload the same file(s) to reproduce it.")
    elif mode == "path":
        st.text_input("Path under the data root", key=K.DS_PATH, placeholder="e.g. msmarco/bm25.jsonl",
                      help=f"Read only from inside the data root {data_root()} (set ECISEM_DATA_ROOT to change "
                           "it). Press Enter to load.")
    ds, error = _load_dataset(mode)
    if error:
        st.error(error, icon=":material/error:")
    elif ds is not None:
        st.caption(f"**{ds.label}** · {len(ds.table):,} triplets · {len(ds.sources)} sources")
        if ds.report.rows_excluded:
            st.warning(ds.report.headline(), icon=":material/warning:")
    st.session_state[K.DATASET] = ds.id if ds is not None else wanted
    return ds, error


def _encoder_section() -> tuple[str, str | None]:
    st.segmented_control("Encoder", list(ENCODER_LABELS), format_func=ENCODER_LABELS.get, key=K.ENC_KIND,
                         required=True, width="stretch",
                         help="The frozen target encoder that scores the triplets: all-MiniLM-L6-v2 (offline, "
                              "default), a TF-IDF/LSA baseline, or a sentence-transformers folder under the data root.")
    kind = st.session_state.get(K.ENC_KIND) or "default"
    if kind == "path":
        st.text_input("Model folder under the data root", key=K.ENC_PATH, placeholder="e.g. models/e5-small-v2")
        rel = (st.session_state.get(K.ENC_PATH) or "").strip()
        if not rel:
            return "default", "type a model folder (using the default encoder meanwhile)"
        spec = PATH_PREFIX + rel
        try:
            data.encoder_id(spec)
        except InputError as exc:
            return "default", exc.problem
        return spec, None
    return kind, None


def _weights_section() -> None:
    st.slider("τ  temperature", *RANGES["tau"], step=STEPS["tau"], key=K.TAU, format="%.3f",
              help="Temperature of c = σ(Δ/τ) and h = exp(−max(0, Δ)/τ), Δ = s_qp − s_qn.")
    st.slider("α  target consistency", *RANGES["alpha"], step=STEPS["alpha"], key=K.ALPHA,
              help="Exponent of c in w = c^α·h^β·ρ^γ. c near 0: the encoder prefers the negative (likely false "
                   "negative). 0 switches the term off.")
    st.slider("β  semantic locality", *RANGES["beta"], step=STEPS["beta"], key=K.BETA,
              help="Exponent of h: rewards negatives as close to the query as the positive (hard ones).")
    st.slider("γ  lexical residuality", *RANGES["gamma"], step=STEPS["gamma"], key=K.GAMMA,
              help="Exponent of ρ: the share of the negative's IDF mass not already in the query or positive.")
    st.select_slider("κ / d  diversity strength", options=list(KAPPA_D_OPTIONS), key=K.KAPPA_D,
                     format_func=lambda v: f"{v:g}" + (" (default)" if v == KAPPA_D_DEFAULT else ""),
                     help="κ of (1/κ)·log det(I + κM), as a multiple of the dimension d. Default 2 (ε² = 0.5). "
                          "Small κ: ECI_sem ≈ info and diversity stops mattering.")
    c1, c2 = st.columns(2)
    c1.number_input("N per source", min_value=int(RANGES["sample_size"][0]), max_value=int(RANGES["sample_size"][1]),
                    step=int(STEPS["sample_size"]), key=K.SAMPLE_SIZE,
                    help=f"Triplets sampled per source for ECI_sem (default {SAMPLE_SIZE}).")
    c2.number_input("Seed", min_value=0, max_value=int(RANGES["seed"][1]), step=1, key=K.SEED,
                    help="Seed of the sample, the bootstrap and the stability jitter.")


def _sources_section(ds: data.Dataset | None) -> None:
    if ds is None:
        return
    options = ds.sources
    if st.session_state.get("_ecisem_sources_for") != ds.key:
        wanted = [s for s in (st.session_state.get(K.SOURCES) or []) if s in options]
        dropped = [s for s in (st.session_state.get(K.SOURCES) or []) if s not in options]
        if dropped:
            st.session_state.setdefault(K.NOTICES, []).append(
                f"source(s) {', '.join(dropped)} are not in this dataset")
        st.session_state[K.SOURCES] = wanted or list(options)
        st.session_state["_ecisem_sources_for"] = ds.key
    chosen = len(st.session_state.get(K.SOURCES) or options)
    with st.expander(f"Sources · {chosen} of {len(options)}", icon=":material/filter_list:"):
        st.multiselect("Sources", options, key=K.SOURCES, label_visibility="collapsed",
                       help="Sources to rank (the leaderboard, P(A > B) and stability are computed among these).",
                       placeholder="all sources")


def reset_weights() -> None:
    """Callback: metric settings back to their defaults."""
    d = Settings()
    for name in ("tau", "alpha", "beta", "gamma", "kappa_d", "sample_size", "seed"):
        st.session_state[getattr(K, name.upper())] = getattr(d, name)


def start(view: str | None = None) -> Context:
    """Read the URL (first run), draw the sidebar (the share link last), load the dataset. Returns the page
    context. ``view``: the url path of the page about to run."""
    _init_from_url()
    if view is not None:
        st.session_state[K.VIEW] = view
    with st.sidebar:
        ds, error = _dataset_section()
        encoder, enc_error = _encoder_section()
        if enc_error:
            st.error(enc_error, icon=":material/error:")
        st.markdown("**Weights**")
        _weights_section()
        _sources_section(ds)
        st.button("Reset weights", on_click=reset_weights, type="tertiary", icon=":material/restart_alt:")
        for note in st.session_state.pop(K.NOTICES, []) or []:
            st.warning(f"Share link: {note}", icon=":material/link_off:")
        settings = _settings(ds)
        _share_popover(settings)
    ctx = Context(settings, ds, error, encoder, enc_error)
    st.session_state[CONTEXT] = ctx
    return ctx


def _share_popover(settings: Settings) -> None:
    """The "Copy share link" popover. Drawn at a fixed place with a key, so a rerun (a background result
    arriving) does not close it. Page settings not chosen yet are at their defaults, which a link leaves out."""
    url = share.share_url(st.context.url or "", share.encode(settings, full=True))
    with st.popover("Copy share link", icon=":material/link:", width="stretch", key="share_popover"):
        st.caption("Opens this view with the same dataset, encoder, weights, sources and page settings. "
                   "Click the copy icon.")
        st.code(url, language=None, wrap_lines=True)
        if settings.dataset.startswith(UPLOAD_PREFIX):
            st.caption("The dataset was uploaded: whoever opens the link must upload the same file(s).")


def _settings(ds: data.Dataset | None) -> Settings:
    s = settings_from_state(st.session_state)
    if ds is not None and set(s.sources) >= set(ds.sources):
        s = s.replace(sources=())
    return s


def context() -> Context:
    """The context set by :func:`start` in this run (pages call this)."""
    return st.session_state[CONTEXT]


def finish(view: str) -> None:
    """After the page ran: settings (page-specific ones chosen during the run included) → URL query string."""
    data.warm_up_umap()
    st.session_state[K.VIEW] = view
    ctx = st.session_state.get(CONTEXT)
    settings = _settings(ctx.dataset if ctx else None)
    ours = share.encode(settings)
    current = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    merged = share.merge_params(current, ours)
    if {k: share.as_list(v) for k, v in merged.items()} != {k: list(v) for k, v in current.items()}:
        st.query_params.from_dict(merged)
