"""Geometry: UMAP of queries, positives and negatives; colour by role, source, a term or FN score; query links;
box/lasso selection lists the triplets."""
from __future__ import annotations

import html

import numpy as np
import streamlit as st

from ecisem_core.embed.projection import query_links, selected_rows
from ecisem_core.report import figures
from ecisem_core.ui import data, layout, projections
from ecisem_core.ui.state import COLOUR_OPTIONS, RANGES, STEPS, K

COLOUR_LABELS = {"role": "Role", "source": "Source", "c": "c consistency", "h": "h locality", "rho": "ρ residuality",
                 "w": "w weight", "fn_score": "FN score"}
SNIPPET = 140


def controls() -> tuple[int, str]:
    if st.session_state.get(K.COLOUR) not in COLOUR_OPTIONS:
        st.session_state[K.COLOUR] = "role"
    c1, c2 = st.columns([1, 3])
    cap = c1.number_input("Triplets per source", min_value=int(RANGES["cap"][0]), max_value=int(RANGES["cap"][1]),
                          step=int(STEPS["cap"]), key=K.CAP, persist_state="session",
                          help="Sampled evenly per source (seeded). Raise it for a denser map; each new size is "
                               "computed once and cached on disk.")
    colour = c2.segmented_control("Colour by", list(COLOUR_OPTIONS), format_func=COLOUR_LABELS.get, key=K.COLOUR,
                                  required=True, persist_state="session")
    return int(cap), colour or "role"


def main() -> None:
    s = layout.scored_page("Geometry")
    if s is None:
        return
    cap, colour = controls()
    seed = int(s.request.config.seed)
    cached = projections.projection_ready(s.dataset, s.ctx.encoder, cap, seed)
    if cached:
        proj = projections.projection(s.dataset, s.ctx.encoder, s.prep, cap, seed)
    else:
        with st.spinner(f"Computing the UMAP layout ({cap:,} triplets per source; once, then cached on disk)…",
                        show_time=True):
            proj = projections.projection(s.dataset, s.ctx.encoder, s.prep, cap, seed)

    selected = set(s.result.sources["source"])
    pts = proj.points.assign(label=projections.projection_labels(s.dataset, s.ctx.encoder, s.prep, proj, SNIPPET))
    pts = pts[(pts["role"] != "negative") | pts["source"].isin(selected)].reset_index(drop=True)
    values = data.row_values(s.prep, s.result, ["c", "h", "rho", "w", "fn_score"])
    is_neg = (pts["role"] == "negative").to_numpy()
    for col in values.columns:
        pts[col] = np.where(is_neg, values[col].to_numpy()[pts["row"].to_numpy()], np.nan)
    pts["pid"] = np.arange(len(pts))

    queries = pts[pts["role"] == "query"].sort_values("label")
    options = [""] + queries["query_id"].tolist()
    labels = dict(zip(queries["query_id"], queries["label"]))
    if st.session_state.get(K.QUERY) not in options:
        st.session_state[K.QUERY] = ""
    qid = st.selectbox("Draw the links of a query (q→p solid green, q→n dotted red)", options, key=K.QUERY,
                       format_func=lambda q: "(none)" if q == "" else html.unescape(labels.get(q, q)),
                       persist_state="session")
    links = query_links(pts, qid) if qid else None

    fig = figures.geometry(pts, colour, figures.source_colours(s.dataset.sources), links)
    event = st.plotly_chart(fig, width="stretch", key="geometry_plot", on_select="rerun",
                            selection_mode=("box", "lasso"), config={"displaylogo": False}, theme=None)
    counts = pts["role"].value_counts()
    st.caption(f"{proj.n_fitted:,} unique texts laid out by UMAP (cosine, n_neighbors 15, seed {seed}) — "
               f"{counts.get('query', 0):,} queries, {counts.get('positive', 0):,} positives, "
               f"{counts.get('negative', 0):,} negatives. "
               + ("Loaded from cache." if cached or proj.from_cache else f"Computed in {proj.seconds:.1f} s.")
               + " Drag a box or lasso to list triplets.")

    picked = [int(cd[0] if isinstance(cd, list) else cd)
              for cd in (p.get("customdata") for p in (event.selection.points if event else [])) if cd is not None]
    if picked:
        rows = selected_rows(pts, picked)
        table = s.prep.triplets.iloc[rows][["source", "query", "positive", "negative"]].copy()
        table = table.join(values.iloc[rows])
        st.subheader(f"{len(rows):,} selected triplets", divider="gray")
        st.dataframe(table, hide_index=True, width="stretch", column_config={
            "query": st.column_config.TextColumn(width="medium"),
            "positive": st.column_config.TextColumn(width="large"),
            "negative": st.column_config.TextColumn(width="large"),
            **{c: st.column_config.NumberColumn(format="%.3f") for c in values.columns}})
        st.download_button("Selected triplets (CSV)", table.to_csv(index=False), file_name="selected_triplets.csv",
                           mime="text/csv", icon=":material/download:")


main()
