"""Explorer: every scored triplet in one linked view — a map (one point per (negative text, source)), a
searchable, filterable table and a detail card with the terms, the FN evidence and the nearest neighbours."""
from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from ecisem_core.embed.projection import CAP_PER_SOURCE
from ecisem_core.report import figures
from ecisem_core.ui import curate, data, explorer, layout, projections, share
from ecisem_core.ui.state import K
from ecisem_core.ui.store import Store
from ecisem_core.ui.text import md_escape

PREFIX = "explorer_"
SEARCH, SOURCES, FN, JUNK, LIMIT, OF, VERDICT = (PREFIX + k for k in ("search", "sources", "fn", "junk", "limit", "of",
                                                                      "verdict"))
POINTS, MAP, LINKED, DENSITY = PREFIX + "points", PREFIX + "map", PREFIX + "linked", PREFIX + "density"
RANGE = PREFIX + "range_"  # + term: the range slider of that term
FLAG_OPTIONS = {"any": None, "yes": True, "no": False}
FLAG_LABELS = {"any": "any", "yes": "flagged", "no": "not flagged"}
TABLE_ROWS = 5_000  # most rows sent to the table (the filters and the search narrow it down)
COLUMNS = ["source", "query", "positive", "negative", "s_qp", "s_qn", "s_pn", "c", "h", "rho", "w", "fn_score",
           "fn_flag", "junk_flag", "verdict", "shared_by", "fn_reasons"]


@st.cache_resource(show_spinner=False)
def _store() -> Store:
    return Store(4)


def tables(s: layout.Scored, proj) -> tuple:
    """The explorer table and its map points for the current scores and layout (cached per settings)."""
    key = (*data.scores_key(s.dataset, s.ctx.encoder, s.request), proj.key)

    def build():
        keep = s.prep.triplets["source"].isin(set(s.result.sources["source"])).to_numpy()
        e = s.prep.embedded
        t = explorer.explorer_table(s.result.triplets, e.qi[keep], e.pi[keep], e.ni[keep], np.flatnonzero(keep))
        lay = proj.points[["text_index", "x", "y"]]
        return t, explorer.map_points(t, lay)

    return _store().get_or_compute(key, build)


def with_verdicts(key: tuple, table):
    """The table with each row's consensus verdict from the annotation store (cached per set of verdicts; no store:
    every row "not judged")."""
    store, _ = curate.try_open_store()
    verdicts = curate.all_verdicts(store) if store is not None else curate.EMPTY_VERDICTS
    return _store().get_or_compute((*key, "verdicts", curate.verdicts_fingerprint(verdicts)),
                                   lambda: table.assign(verdict=explorer.verdict_states(table, verdicts)))


def _on_map_select() -> None:
    """The user changed the map selection: keep its point ids (a redrawn map starts with an empty selection)."""
    event = st.session_state.get(MAP)
    pts = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", [])
    ids = []
    for p in pts:
        cd = p.get("customdata")
        if isinstance(cd, dict):  # a typed array arrives as {"0": …, "1": …}
            cd = cd.get("0")
        elif isinstance(cd, list):
            cd = cd[0] if cd else None
        if cd is not None:
            ids.append(int(cd))
    st.session_state[POINTS] = tuple(sorted(set(ids))) if ids else None


def _from_link(sources: list[str]) -> None:
    """Once per session: filters named in the link (xq, xs, xf, xj, xr, xp) become the widgets' values."""
    if st.session_state.get(LINKED):
        return
    st.session_state[LINKED] = True
    got = explorer.filters_from_params({k: st.query_params.get_all(k) for k in st.query_params}, sources)
    for name, key in (("search", SEARCH), ("sources", SOURCES), ("fn", FN), ("junk", JUNK), ("points", POINTS),
                      ("verdict", VERDICT)):
        if name in got:
            st.session_state[key] = got[name]
    for col, lo_hi in (got.get("ranges") or {}).items():
        st.session_state[RANGE + col] = lo_hi  # kept inside the data's bounds when the sliders are drawn


def _to_link(spec: explorer.FilterSpec, fn: str, junk: str) -> None:
    """The filters into the URL (so the share link carries them); defaults leave their parameter out."""
    want = explorer.filters_to_params(spec.search, spec.sources, fn or "any", junk or "any", spec.ranges,
                                      spec.points, spec.verdict)
    for k in share.PAGE_PARAMS["explorer"]:
        if k not in want and k in st.query_params:
            del st.query_params[k]
    for k, v in want.items():
        if st.query_params.get_all(k) != (v if isinstance(v, list) else [v]):
            st.query_params[k] = v


def filters(table, sources: list[str]) -> explorer.FilterSpec:
    _from_link(sources)
    search = st.text_input("Search queries, positives and negatives", key=SEARCH, persist_state="session",
                           placeholder="a word or phrase (case-insensitive)")
    if any(x not in sources for x in st.session_state.get(SOURCES) or []):
        st.session_state[SOURCES] = [x for x in st.session_state[SOURCES] if x in sources]
    c2, c3, c4, c6, c5 = st.columns([3, 1.3, 1.3, 1.6, 1.5])  # the search has its own row: readable at 1024 px
    chosen = c2.multiselect("Sources", sources, key=SOURCES, placeholder="all sources", persist_state="session")
    fn = c3.selectbox("Flagged", list(FLAG_OPTIONS), format_func=FLAG_LABELS.get, key=FN, persist_state="session",
                      help="Likely false negatives: triplets whose FN score passes the flag rule.")
    junk = c4.selectbox("Junk", list(FLAG_OPTIONS), format_func=FLAG_LABELS.get, key=JUNK, persist_state="session")
    verdict = c6.selectbox("Verdict", explorer.VERDICT_STATES, index=None, key=VERDICT, placeholder="any",
                           persist_state="session",
                           help="The annotators' consensus on the query–negative pair (every batch of the "
                                "annotation store).")
    c5.number_input("Map points (most)", 1_000, 200_000, explorer.MAP_POINTS, step=1_000, key=LIMIT,
                    persist_state="session", help="Beyond it the map draws a seeded sample of the matching points.")
    bounds = explorer.slider_bounds(table)
    values = {}
    with st.expander("Ranges of s_qp, s_qn, s_pn, c, h, ρ, w, FN score"):
        cols = st.columns(4)
        for i, col in enumerate(explorer.TERMS):
            lo, hi = bounds[col]
            k = RANGE + col
            old = st.session_state.get(k)
            if old is not None:  # keep a remembered range inside this data's bounds
                st.session_state[k] = (min(max(old[0], lo), hi), max(min(old[1], hi), lo))
            values[col] = cols[i % 4].slider(explorer.TERM_LABELS[col], lo, hi, (lo, hi), step=0.01, key=k,
                                             persist_state="session")
    spec = explorer.FilterSpec(search=search or "", sources=tuple(chosen) if chosen else None,
                               fn_flag=FLAG_OPTIONS[fn or "any"], junk_flag=FLAG_OPTIONS[junk or "any"],
                               ranges=explorer.range_filters(values, bounds), points=st.session_state.get(POINTS),
                               verdict=verdict)
    _to_link(spec, fn, junk)
    return spec


def card(s: layout.Scored, table, row) -> None:
    of = st.segmented_control("Nearest neighbours of", list(explorer.TEXTS), key=OF, default="negative",
                              required=True) or "negative"
    index = int(row[{"query": "qi", "positive": "pi", "negative": "ni"}[of]])
    near = explorer.neighbours_table(table, s.prep.embedded.matrix, s.prep.embedded.texts, index)
    shared = sorted(table.loc[table["ni"].to_numpy() == int(row["ni"]), "source"].astype(str).unique())
    st.html(explorer.card_html(row.to_dict(), near, of, shared))


def main() -> None:
    s = layout.scored_page("Explorer")
    if s is None:
        return
    seed, cap = int(s.request.config.seed), int(st.session_state.get(K.CAP) or CAP_PER_SOURCE)
    if projections.projection_ready(s.dataset, s.ctx.encoder, cap, seed):
        proj = projections.projection(s.dataset, s.ctx.encoder, s.prep, cap, seed)
    else:
        with st.spinner(f"Computing the UMAP layout ({cap:,} triplets per source; once, then cached on disk)…",
                        show_time=True):
            proj = projections.projection(s.dataset, s.ctx.encoder, s.prep, cap, seed)
    table, points = tables(s, proj)
    table = with_verdicts((*data.scores_key(s.dataset, s.ctx.encoder, s.request), proj.key), table)
    spec = filters(table, sorted(table["source"].astype(str).unique()))
    shown = explorer.filter_triplets(table, spec)
    matches = explorer.filter_triplets(table, spec.without_points())

    digest = hashlib.sha1(repr((s.dataset.key, len(table), spec)).encode()).hexdigest()[:12]
    view = shown.head(TABLE_ROWS)
    left, right = st.columns([5, 4])
    with right:
        parts = [f"**{len(shown):,}** of {len(table):,} triplets match"]
        if spec.search.strip():
            parts.append(f"{int(explorer.search_mask(table, spec.search).sum()):,} contain “{md_escape(spec.search.strip())}”")
        if spec.points is not None:
            parts.append(f"map selection: {len(spec.points):,} points"
                         + (f" (too many for a share link: it carries at most {explorer.LINK_POINTS_MAX:,})"
                            if len(spec.points) > explorer.LINK_POINTS_MAX else ""))
        if len(shown) > TABLE_ROWS:
            parts.append(f"first {TABLE_ROWS:,} listed")
        st.markdown(" · ".join(parts))
        if spec.points is not None and st.button("Clear map selection", icon=":material/deselect:"):
            st.session_state[POINTS] = None
            st.rerun()
        event = st.dataframe(view[COLUMNS], hide_index=True, width="stretch", height=300,
                             key=PREFIX + "rows_" + digest, on_select="rerun", selection_mode="single-row",
                             column_config={
                                 "query": st.column_config.TextColumn(width="medium"),
                                 "positive": st.column_config.TextColumn(width="medium"),
                                 "negative": st.column_config.TextColumn(width="medium"),
                                 **{c: st.column_config.NumberColumn(format="%.3f") for c in explorer.TERMS}})
        rows = event.selection.rows if event is not None else []
        picked = view.iloc[int(rows[0])] if rows and int(rows[0]) < len(view) else None
        if picked is not None:
            card(s, table, picked)
        else:
            st.caption("Select a row of the table to open its card and ring its point on the map.")

    with left:
        limit = int(st.session_state.get(LIMIT) or explorer.MAP_POINTS)
        visible = np.unique(matches["point"].to_numpy())
        highlight = int(picked["point"]) if picked is not None else None
        drawn = explorer.sample_points(points, visible, limit, seed, keep=highlight)
        colours = figures.source_colours(s.dataset.sources)
        selected = None if spec.points is None else np.asarray(spec.points)
        density = st.toggle("Density", key=DENSITY, help="Filled density contours under the points: where they "
                            "crowd when thousands overlap.")
        fig = figures.explorer_map(drawn, colours, highlight, selected, density=density)
        st.plotly_chart(fig, width="stretch", key=MAP, on_select=_on_map_select, selection_mode=("box", "lasso"),
                        config={"displaylogo": False}, theme=None)
        on_map = int(points.loc[visible, "on_map"].sum()) if len(visible) else 0
        st.caption(f"{len(drawn):,} of {on_map:,} matching points drawn"
                   + (f" (a seeded sample of {limit:,})" if on_map > limit else "")
                   + " — one per (negative text, source): a negative mined by several sources is drawn once per "
                   "source on a small ring around its place (the hover says by how many). Layout: the Geometry "
                   f"page's UMAP ({cap:,} triplets per source, seed {seed}); {len(visible) - on_map:,} matching "
                   "points have no place in it (raise the cap there). Box or lasso to filter the table.")


main()
