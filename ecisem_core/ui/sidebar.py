"""The settings sidebar shown on every page, the URL sync and the share link.

``app.py`` calls :func:`start` before the page runs (reads the URL once per session, draws the sidebar, loads
the dataset) and :func:`finish` after it (writes the settings back into the URL and fills the share link), so
page-specific settings chosen during the page's run are in the link too.

A rerun of the same page with the same dataset and encoder choices (a slider moved, a page control changed) runs
the page first, with the previous run's dataset and this run's settings (:func:`resumable`), and draws the
sidebar after it (:func:`after_page`): the browser then gets the page's changed table before the sidebar's
twenty-odd unchanged widgets, instead of re-rendering them while the server computes. At 100k triplets this took
a slider's latency from 265–279 ms to 168–209 ms in the browser in interleaved runs on a loaded machine. Widget
values are in session state when a run starts, so the page sees the same settings either way; if the dataset
changed on disk meanwhile, :func:`after_page` reruns the page with it.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

import streamlit as st

from ecisem_core.config import Setting
from ecisem_core.errors import InputError
from ecisem_core.metric.presets import FITTED_DIM, get_preset, presets
from ecisem_core.ui import data, projections, saved_views, share
from ecisem_core.ui.paths import data_root
from ecisem_core.ui.text import md_escape
from ecisem_core.ui.state import (DATASET_DEMO, HUB_PREFIX, PATH_PREFIX, UPLOAD_PREFIX, K, MetricState, ViewState,
                                  nearest_option, ui_default, ui_settings, view_from_state, view_to_state, widget_key)

CONTEXT = "_ecisem_context"
MODE_LABELS = {"demo": "Demo", "upload": "Upload", "path": "Path"}
ENCODER_LABELS = {"default": "MiniLM (default)", "tfidf": "TF-IDF / LSA", "path": "Model folder",
                  "name": "Model name"}


@dataclass
class Context:
    """What a page needs: the view (settings), the loaded dataset (or why there is none) and the encoder spec."""

    view: ViewState
    dataset: data.Dataset | None
    error: str | None
    encoder: str
    encoder_error: str | None


def _init_from_url() -> None:
    """Once per session: settings from the URL query string into session state."""
    if st.session_state.get(K.INITIALISED):
        return
    params = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    view, notes = share.decode(params)
    view_to_state(view, st.session_state)
    st.session_state[K.NOTICES] = st.session_state.get(K.NOTICES, []) + notes
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
            st.info(f"The link refers to an uploaded dataset ({md_escape(wanted)}). Upload the same file(s) to "
                    "reproduce it.")
    elif mode == "path":
        st.text_input("Path under the data root", key=K.DS_PATH, placeholder="e.g. msmarco/bm25.jsonl",
                      help=f"Read only from inside the data root {data_root()} (set ECISEM_DATA_ROOT to change "
                           "it). Press Enter to load.")
    ds, error = _load_dataset(mode)
    if error:  # the message itself is shown once, on the page (layout.scored); here only that there is one
        st.caption("Not loaded: the reason is shown on the page.")
    elif ds is not None:
        st.caption(f"**{md_escape(ds.label)}** · {len(ds.table):,} triplets · {len(ds.sources)} sources")
        if ds.report.rows_excluded:
            st.warning(ds.report.headline(), icon=":material/warning:")
    st.session_state[K.DATASET] = ds.id if ds is not None else wanted
    return ds, error


def _encoder_section() -> tuple[str, str | None]:
    st.segmented_control("Encoder", list(ENCODER_LABELS), format_func=ENCODER_LABELS.get, key=K.ENC_KIND,
                         required=True, width="stretch",
                         help="The frozen target encoder that scores the triplets: all-MiniLM-L6-v2 (offline, "
                              "default), a TF-IDF/LSA baseline, a sentence-transformers folder under the data root, or a model "
                              "name from the local Hugging Face cache (offline).")
    kind = st.session_state.get(K.ENC_KIND) or "default"
    if kind in ("path", "name"):
        if kind == "path":
            st.text_input("Model folder under the data root", key=K.ENC_PATH, placeholder="e.g. models/e5-small-v2")
        else:
            st.text_input("Model name (from this machine's Hugging Face cache; nothing is downloaded)",
                          key=K.ENC_NAME, placeholder="e.g. BAAI/bge-small-en-v1.5")
        text = (st.session_state.get(K.ENC_PATH if kind == "path" else K.ENC_NAME) or "").strip()
        if not text:  # nothing typed yet: a hint, not an error
            st.caption("Scoring with the default encoder until a model is given.")
            return "default", None
        spec = (PATH_PREFIX if kind == "path" else HUB_PREFIX) + text
        try:
            data.encoder_id(spec)
        except InputError as exc:
            return "default", exc.problem
        return spec, None
    return kind, None


def widget_settings() -> list[Setting]:
    """The registry settings with a sidebar widget, in registry order."""
    return [s for s in ui_settings() if s.label is not None]


def _widget(s: Setting, where=st) -> None:
    """The sidebar widget of one setting: a step slider (per dimension), a slider (float), a number input (int)
    or a select box (choices)."""
    key, tip = widget_key(s), (s.widget_help or "").format(default=s.default) or None
    if s.per_dim:
        where.select_slider(s.label, options=list(s.options), key=key, help=tip,
                            format_func=lambda v: f"{v:g}" + (" (default)" if v == ui_default(s) else ""))
    elif s.kind == "float":
        where.slider(s.label, *s.ui_range, step=s.step, key=key, format=s.widget_format, help=tip)
    elif s.kind == "int":
        where.number_input(s.label, min_value=int(s.ui_range[0]), max_value=int(s.ui_range[1]), step=int(s.step),
                           key=key, help=tip)
    else:
        where.selectbox(s.label, list(s.choices or ()), key=key, help=tip)


def _weights_section() -> None:
    """Sliders first, then the number inputs two to a row."""
    settings = widget_settings()
    inputs = [s for s in settings if s.kind == "int" and not s.per_dim]
    for s in settings:
        if s not in inputs:
            _widget(s)
    for i in range(0, len(inputs), 2):
        for col, s in zip(st.columns(2), inputs[i:i + 2]):
            _widget(s, col)


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


PRESET_KEY = "preset_pick"


def apply_preset() -> None:
    """Callback: the chosen preset's settings into the sliders (κ as κ/d at the dimension it was fitted at)."""
    name = st.session_state.get(PRESET_KEY)
    if not name:
        return
    config = get_preset(name).config
    for s in widget_settings():
        value = getattr(config, s.name)
        if s.per_dim:
            value = ui_default(s) if value is None else nearest_option(s, float(value) / FITTED_DIM)
        st.session_state[widget_key(s)] = value
    st.session_state[PRESET_KEY] = None


def _preset_section() -> None:
    known = presets()
    st.selectbox("Preset", list(known), index=None, key=PRESET_KEY, on_change=apply_preset,
                 placeholder="apply a preset…", format_func=lambda n: f"{n} — {known[n].title}",
                 help="Named settings: 'paper' is the published construction; the others were fitted on the "
                      "project's validity study (README) for a training regime.")


def reset_weights() -> None:
    """Callback: metric settings back to their defaults."""
    default = MetricState()
    for s in widget_settings():
        st.session_state[widget_key(s)] = default[s.name]


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
        _preset_section()
        _weights_section()
        _sources_section(ds)
        st.button("Reset weights", on_click=reset_weights, type="tertiary", icon=":material/restart_alt:")
        for note in st.session_state.pop(K.NOTICES, []) or []:
            st.warning(f"Share link: {md_escape(note)}", icon=":material/link_off:")
        view = _view(ds)
        st.session_state[SHARE_SLOT] = st.empty()  # the share link is drawn by finish(), after the page ran
    ctx = Context(view, ds, error, encoder, enc_error)
    st.session_state[CONTEXT] = ctx
    st.session_state[CHOICES] = _choices()
    return ctx


CHOICES = "_ecisem_data_choices"
"""Session key of :func:`_choices` as :func:`start` last saw them."""


def _choices() -> tuple:
    """What the dataset and encoder depend on in the sidebar's widgets (mode, path, uploaded files, encoder)."""
    files = st.session_state.get(K.DS_UPLOAD) or []
    return (tuple(st.session_state.get(k) for k in (K.DS_MODE, K.DS_PATH, K.ENC_KIND, K.ENC_PATH, K.ENC_NAME)),
            tuple((getattr(f, "file_id", None), f.name, f.size) for f in files))


def resumable(view: str) -> Context | None:
    """The context for drawing the page before the sidebar (see the module docstring): the previous run's, with
    this run's settings, when the previous run was of the same page, had a dataset and no error, and the dataset
    and encoder choices are unchanged; else ``None`` (draw the sidebar first, as :func:`start` does)."""
    _init_from_url()
    old = st.session_state.get(CONTEXT)
    if (old is None or old.dataset is None or old.error or old.encoder_error
            or st.session_state.get(K.VIEW) != view or st.session_state.get(CHOICES) != _choices()):
        return None
    ctx = replace(old, view=_view(old.dataset))
    st.session_state[CONTEXT] = ctx
    return ctx


def after_page(view: str, used: Context) -> None:
    """Draw the sidebar after a page that ran with :func:`resumable`'s context ``used``; rerun when the dataset
    or encoder it finds now differs (the file changed on disk meanwhile), so the page never stays on old data."""
    ctx = start(view)
    same = (ctx.dataset is not None and used.dataset is not None and ctx.dataset.key == used.dataset.key
            and ctx.encoder == used.encoder and ctx.error == used.error and ctx.encoder_error == used.encoder_error)
    if not same:
        st.rerun()


SHARE_SLOT = "_ecisem_share_slot"
"""Session key of the sidebar placeholder the share link is drawn into at the end of a run."""


def open_saved_view() -> str | None:
    """First run of a session whose link names a saved view (``?sv=<name>``): its parameters replace the link's,
    and the page it was saved on is returned (``app.py`` shows it); an unknown name is said once, in the
    sidebar, and None is returned."""
    name = st.query_params.get(saved_views.PARAM)
    if not name:
        return None
    try:
        saved = saved_views.ViewStore(saved_views.views_path()).get(name)
    except (OSError, sqlite3.Error) as exc:
        saved, problem = None, f"the saved views cannot be read ({exc})"
    else:
        problem = f"there is no saved view named {name!r}"
    if saved is None:
        st.session_state[K.NOTICES] = [problem]
        return None
    st.query_params.from_dict({**saved.params, saved_views.PARAM: saved.name})
    return saved.page


def _save_view(page: str, params: dict) -> None:
    """Callback of "Save view": the current view's parameters under the typed name."""
    try:
        saved = saved_views.ViewStore(saved_views.views_path()).save(
            st.session_state.get(K.SV_NAME) or "", page, params, replace=bool(st.session_state.get(K.SV_REPLACE)))
    except InputError as exc:
        st.session_state[K.SV_SAVED] = ("error", exc.problem)
    except (OSError, sqlite3.Error) as exc:
        st.session_state[K.SV_SAVED] = ("error", f"the view could not be saved ({exc})")
    else:
        st.session_state[K.SV_SAVED] = ("ok", saved.name)


def _saved_views_section(page: str, params: dict) -> None:
    """Inside the share popover: save the view under a name; the saved views, newest first, as links."""
    st.markdown("**Save this view under a name**")
    st.text_input("View name", key=K.SV_NAME, placeholder="e.g. bm25 vs llm, flagged only",
                  max_chars=saved_views.NAME_MAX, label_visibility="collapsed")
    st.checkbox("Replace a view of that name", key=K.SV_REPLACE)
    st.button("Save view", icon=":material/bookmark_add:", on_click=_save_view, args=(page, params))
    base = (st.context.url or "").split("?", 1)[0]
    base = base[: -len(page)] if page and base.rstrip("/").endswith(page) else base
    outcome = st.session_state.get(K.SV_SAVED)
    if outcome is not None and outcome[0] == "error":
        st.error(md_escape(outcome[1]), icon=":material/error:")
    try:
        store = saved_views.ViewStore(saved_views.views_path())
        listed = store.names().head(10)
    except (OSError, sqlite3.Error) as exc:
        st.caption(f"Saved views cannot be read ({md_escape(exc)}).")
        return
    if outcome is not None and outcome[0] == "ok":
        view = store.get(outcome[1])
        if view is not None:
            st.success(f"Saved as “{md_escape(view.name)}”. Its link:", icon=":material/bookmark_added:")
            st.code(saved_views.view_link(base.rstrip("/"), view), language=None, wrap_lines=True)
    if not listed.empty:
        st.markdown("**Saved views**")
        for rec in listed.to_dict("records"):
            link = saved_views.view_link(base.rstrip("/"), saved_views.SavedView(rec["name"], rec["page"], {}, ""))
            st.markdown(f"[{md_escape(rec['name'])}]({link}) · {md_escape(rec['page'] or 'first page')}")


def _share_popover(view: ViewState, extra: dict, page: str = "") -> None:
    """The "Copy share link" popover. Drawn at a fixed place with a key, so a rerun (a background result
    arriving) does not close it. Page settings not chosen yet are at their defaults, which a link leaves out;
    ``extra``: the current page's own parameters (share.PAGE_PARAMS), e.g. the Explorer's filters."""
    url = share.share_url(st.context.url or "", {**share.encode(view, full=True), **extra})
    with st.popover("Copy share link", icon=":material/link:", width="stretch", key="share_popover"):
        st.caption("Opens this view with the same dataset, encoder, weights, sources and page settings.")
        st.html(share.copy_button_html(url), unsafe_allow_javascript=True)  # the URL is escaped into an attribute
        st.code(url, language=None, wrap_lines=True)
        if view.dataset.startswith(UPLOAD_PREFIX):
            st.caption("The dataset was uploaded: whoever opens the link must upload the same file(s).")
        _saved_views_section(page, {**share.encode(view, full=True), **extra})


def _view(ds: data.Dataset | None) -> ViewState:
    v = view_from_state(st.session_state)
    if ds is not None and set(v.sources) >= set(ds.sources):
        v = v.replace(sources=())
    return v


def context() -> Context:
    """The context set by :func:`start` in this run (pages call this)."""
    return st.session_state[CONTEXT]


def finish(view: str) -> None:
    """After the page ran: settings (page-specific ones chosen during the run included) → URL query string."""
    projections.warm_up_umap()
    st.session_state[K.VIEW] = view
    ctx = st.session_state.get(CONTEXT)
    full = _view(ctx.dataset if ctx else None)
    ours = share.encode(full)
    current = {k: st.query_params.get_all(k) for k in st.query_params.keys()}
    stale = share.other_pages_params(view) | {saved_views.PARAM}  # a saved view's name: read on the first run only
    merged = {k: v for k, v in share.merge_params(current, ours).items() if k not in stale}
    if {k: share.as_list(v) for k, v in merged.items()} != {k: list(v) for k, v in current.items()}:
        st.query_params.from_dict(merged)
    slot = st.session_state.pop(SHARE_SLOT, None)
    if slot is not None:
        with slot.container():
            _share_popover(full, share.page_params(view, current), view)
